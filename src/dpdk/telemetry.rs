//! DPDK telemetry commands (`dpdk-telemetry.py -f FILE_PREFIX`):
//! `/btblocker/stats` and `/btblocker/bans`. The callbacks run on DPDK's
//! telemetry thread and ask a [`TelemetrySource`] the caller registered for
//! what to answer; DPDK 22.11's callbacks carry no user pointer, so the source
//! is kept in a static, set once.
use std::ffi::{c_char, c_int, CStr, CString};
use std::sync::OnceLock;

use super::{ffi, DpdkError};

/// What the commands answer, asked on DPDK's telemetry thread: each function
/// hands its entries to the visitor, in order, until the visitor returns
/// false. They must not wait on anything a packet or the control loop holds.
#[derive(Clone, Copy)]
pub struct TelemetrySource {
    /// `/btblocker/stats`: name, value.
    pub stats: fn(&mut StatVisitor<'_>),
    /// `/btblocker/bans`: one string per ban.
    pub bans: fn(&mut LineVisitor<'_>),
}

/// Takes one stats entry; false: stop.
pub type StatVisitor<'a> = dyn FnMut(&str, u64) -> bool + 'a;
/// Takes one line of a list; false: stop.
pub type LineVisitor<'a> = dyn FnMut(&str) -> bool + 'a;

static SOURCE: OnceLock<TelemetrySource> = OnceLock::new();

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

/// Registers the commands, answered from `source`; call after EAL init,
/// once (a second call keeps the first source).
pub fn register(source: TelemetrySource) -> Result<(), DpdkError> {
    let _ = SOURCE.set(source);
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
    // SAFETY: `d` is valid for this call (DPDK's contract for callbacks).
    unsafe { ffi::rte_tel_data_start_dict(d) };
    let Some(source) = SOURCE.get() else { return 0 };
    (source.stats)(&mut |name, value| {
        if let Ok(name) = CString::new(name) {
            // SAFETY: `d` was started as a dictionary above; `name` is a
            // NUL-terminated string DPDK copies before we drop it.
            unsafe { ffi::rte_tel_data_add_dict_u64(d, name.as_ptr(), value) };
        }
        true
    });
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
    // SAFETY: `d` is valid for this call (DPDK's contract for callbacks).
    unsafe { ffi::rte_tel_data_start_array(d, ffi::rte_tel_value_type_RTE_TEL_STRING_VAL) };
    let Some(source) = SOURCE.get() else { return 0 };
    (source.bans)(&mut |line| {
        let Ok(line) = CString::new(line) else {
            return true;
        };
        // SAFETY: `d` was started as a string array above; DPDK copies the
        // NUL-terminated `line` (at most RTE_TEL_MAX_STRING_LEN bytes, or it
        // refuses it) before we drop it. A refusal (array full) ends the list.
        unsafe { ffi::rte_tel_data_add_array_string(d, line.as_ptr()) >= 0 }
    });
    0
}
