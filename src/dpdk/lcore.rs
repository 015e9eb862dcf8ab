//! Running Rust closures on EAL worker lcores.
use std::ffi::{c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};

use super::{ffi, DpdkError};

type Job = Box<dyn FnOnce() -> i32 + Send + 'static>;

/// Status a worker returns when its closure panicked (never unwinds into C).
pub const PANICKED: i32 = -1000;

extern "C" fn trampoline(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the Box<Job> leaked by `launch` for exactly this call;
    // EAL calls the function once, so the box is reclaimed exactly once.
    let job: Box<Job> = unsafe { Box::from_raw(arg as *mut Job) };
    // Unwinding across the C frame would be undefined behaviour: stop it here.
    catch_unwind(AssertUnwindSafe(job)).unwrap_or(PANICKED)
}

/// Starts `job` on worker lcore `lcore` (which must be idle).
pub fn launch(lcore: u32, job: impl FnOnce() -> i32 + Send + 'static) -> Result<(), DpdkError> {
    let boxed: Box<Job> = Box::new(Box::new(job));
    let arg = Box::into_raw(boxed) as *mut c_void;
    // SAFETY: trampoline has the lcore_function_t signature and takes ownership
    // of `arg`; on failure EAL never calls it, so we reclaim the box below.
    let rc = unsafe { ffi::rte_eal_remote_launch(Some(trampoline), arg, lcore) };
    if rc != 0 {
        // SAFETY: the launch failed, so `arg` was not handed to any lcore.
        drop(unsafe { Box::from_raw(arg as *mut Job) });
        return Err(DpdkError::from_code(
            format!("rte_eal_remote_launch(lcore {lcore})"),
            rc,
        ));
    }
    Ok(())
}

/// Waits for the job on `lcore` and returns its status.
pub fn wait(lcore: u32) -> i32 {
    // SAFETY: blocks until the lcore is back in WAIT state; any lcore id is accepted.
    unsafe { ffi::rte_eal_wait_lcore(lcore) }
}
