use crate::config::Config;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    Dpdk(String),
}

pub fn run(_cfg: &Config) -> Result<(), RunError> {
    Err(RunError::Dpdk("not implemented".into()))
}
