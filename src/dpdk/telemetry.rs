//! DPDK telemetry commands (`dpdk-telemetry.py -f FILE_PREFIX`):
//! `/btblocker/stats` and `/btblocker/bans`. The callbacks run on DPDK's
//! telemetry thread; they only load the view the control loop publishes
//! ([`TELEMETRY`], a pointer swap), so they never wait
//! for the control loop nor touch the ban table.
use std::ffi::{c_char, c_int, CStr, CString};

use super::{ffi, DpdkError};
use crate::control::operator::telemetry_view::TELEMETRY;

/// DPDK keeps at most 128 bytes of help, NUL included.
const COMMANDS: [(&CStr, TelemetryCallback, &CStr); 2] = [
    (
        c"/btblocker/stats",
        stats,
        c"btblocker counters: packets rx/tx/dropped, flows, detections, bans, snapshot generation",
    ),
    (
        c"/btblocker/bans",
        bans,
        c"Bans in force: 'IP reason expires_unix_ms' (0: never). At most 512 / 15 KiB: `btblocker bans list` has all",
    ),
];

type TelemetryCallback =
    unsafe extern "C" fn(*const c_char, *const c_char, *mut ffi::rte_tel_data) -> c_int;

/// Registers the commands; call after EAL init, once.
pub fn register() -> Result<(), DpdkError> {
    for (cmd, callback, help) in COMMANDS {
        // SAFETY: `cmd` and `help` are NUL-terminated (DPDK copies them);
        // `callback` has the signature rte_telemetry_cb expects and, being a
        // plain function, lives as long as the process.
        let rc =
            unsafe { ffi::rte_telemetry_register_cmd(cmd.as_ptr(), Some(callback), help.as_ptr()) };
        if rc < 0 {
            return Err(DpdkError::from_code(
                format!("rte_telemetry_register_cmd({})", cmd.to_string_lossy()),
                rc,
            ));
        }
    }
    Ok(())
}

/// `/btblocker/stats`: a dictionary of counters (empty before the first
/// publish).
///
/// # Safety
/// Called by DPDK's telemetry thread with a valid `d` it owns for the call.
unsafe extern "C" fn stats(
    _cmd: *const c_char,
    _params: *const c_char,
    d: *mut ffi::rte_tel_data,
) -> c_int {
    let view = TELEMETRY.load();
    // SAFETY: `d` is valid for this call (DPDK's contract for callbacks).
    unsafe { ffi::rte_tel_data_start_dict(d) };
    let Some(view) = view.as_ref() else { return 0 };
    for &(name, value) in &view.stats {
        let Ok(name) = CString::new(name) else {
            continue;
        };
        // SAFETY: `d` was started as a dictionary above; `name` is a
        // NUL-terminated string DPDK copies before we drop it.
        unsafe { ffi::rte_tel_data_add_dict_u64(d, name.as_ptr(), value) };
    }
    0
}

/// `/btblocker/bans`: an array of strings (empty before the first publish).
///
/// # Safety
/// Called by DPDK's telemetry thread with a valid `d` it owns for the call.
unsafe extern "C" fn bans(
    _cmd: *const c_char,
    _params: *const c_char,
    d: *mut ffi::rte_tel_data,
) -> c_int {
    let view = TELEMETRY.load();
    // SAFETY: `d` is valid for this call (DPDK's contract for callbacks).
    unsafe { ffi::rte_tel_data_start_array(d, ffi::rte_tel_value_type_RTE_TEL_STRING_VAL) };
    let Some(view) = view.as_ref() else { return 0 };
    for line in &view.bans {
        let Ok(line) = CString::new(line.as_str()) else {
            continue;
        };
        // SAFETY: `d` was started as a string array above; DPDK copies the
        // NUL-terminated `line` (at most RTE_TEL_MAX_STRING_LEN bytes, or it
        // refuses it) before we drop it.
        if unsafe { ffi::rte_tel_data_add_array_string(d, line.as_ptr()) } < 0 {
            break;
        }
    }
    0
}
