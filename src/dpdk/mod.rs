//! The only module with `unsafe`: DPDK bindings and safe wrappers over EAL,
//! mempools, ports, mbufs and lcores.
pub mod runtime;
