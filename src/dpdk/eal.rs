//! EAL start-up and shutdown.
use std::ffi::{c_char, CString};

use super::{ffi, DpdkError};

/// A started Environment Abstraction Layer. Dropping it runs `rte_eal_cleanup`.
pub struct Eal {
    _private: (),
}

impl Eal {
    /// Starts EAL with `args` (argv without `argv[0]`). Can succeed once per process.
    pub fn init(args: &[String]) -> Result<Eal, DpdkError> {
        let mut owned: Vec<CString> = Vec::with_capacity(args.len() + 1);
        owned.push(CString::new("btblocker").expect("no NUL in a literal"));
        for a in args {
            owned.push(CString::new(a.as_str()).map_err(|_| DpdkError {
                call: "rte_eal_init".into(),
                reason: format!("argument {a:?} contains a NUL byte"),
            })?);
        }
        let mut argv: Vec<*mut c_char> = owned.iter().map(|s| s.as_ptr() as *mut c_char).collect();
        let argc = argv.len() as i32;
        // SAFETY: argv points to `argc` valid NUL-terminated strings that outlive
        // the call (`owned`); EAL may permute the pointer array, which we own and
        // do not read afterwards.
        let rc = unsafe { ffi::rte_eal_init(argc, argv.as_mut_ptr()) };
        if rc < 0 {
            return Err(DpdkError::from_errno("rte_eal_init"));
        }
        Ok(Eal { _private: () })
    }

    /// The lcore id of the calling thread (the main lcore for the control loop).
    pub fn current_lcore(&self) -> u32 {
        // SAFETY: reads the calling thread's per-lcore variable.
        unsafe { ffi::rte_lcore_id() }
    }

    /// Whether `lcore` is enabled in EAL's lcore set.
    pub fn lcore_enabled(&self, lcore: u32) -> bool {
        // SAFETY: rte_lcore_is_enabled bounds-checks the id itself.
        unsafe { ffi::rte_lcore_is_enabled(lcore) != 0 }
    }
}

impl Drop for Eal {
    fn drop(&mut self) {
        // SAFETY: called once, after every port is closed and every worker has
        // returned (the runtime drops Eal last).
        unsafe {
            ffi::rte_eal_cleanup();
        }
    }
}
