//! The control socket's listener thread. It reads one request line per
//! connection, hands it to the control loop over a bounded channel and writes
//! back the reply the control loop gives. It never touches the ban table, and
//! nothing it does can block the control loop: each connection has its own
//! short-lived thread with read and write timeouts, and the control loop only
//! ever `try_recv`s.
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tracing::{info, warn};

use super::protocol::{parse_request, Reply, Request, MAX_REQUEST_BYTES};

/// How long a client may take to send its request line: a client that
/// connects and says nothing holds only its own thread, and only this long.
const READ_TIMEOUT: Duration = Duration::from_secs(2);
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a connection waits for the control loop (which answers within a
/// tick while it runs; longer only during start-up or shutdown).
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);
/// Requests queued for the control loop at most; more are answered "busy".
const QUEUE: usize = 64;
/// Connections served at once at most; more are answered "busy".
const MAX_CONNECTIONS: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("another btblocker is already running: it answers on the control socket {path} (stop it first, or give this one another control.socket)")]
    AlreadyRunning { path: String },
    #[error("control socket {path} exists and is not a socket: remove it or choose another control.socket")]
    NotASocket { path: String },
    #[error("control socket {path}: cannot {what}: {source}")]
    Io {
        path: String,
        what: &'static str,
        source: std::io::Error,
    },
}

/// A request waiting for the control loop's answer.
pub struct PendingRequest {
    pub request: Request,
    reply: SyncSender<Reply>,
}

impl PendingRequest {
    /// Sends the reply; a client that gave up meanwhile is no error.
    pub fn answer(self, reply: Reply) {
        let _ = self.reply.send(reply);
    }
}

pub struct OperatorServer {
    path: PathBuf,
    /// (device, inode) of the socket we bound: at stop we remove only that.
    identity: (u64, u64),
    requests: Receiver<PendingRequest>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl OperatorServer {
    /// Creates the socket's directory, replaces a stale socket file, binds
    /// with mode 0600 and starts the listener thread. Refuses when a live
    /// daemon answers on `path`.
    pub fn start(path: &Path) -> Result<OperatorServer, ServerError> {
        let shown = path.display().to_string();
        let io = |what: &'static str| {
            let path = shown.clone();
            move |source| ServerError::Io { path, what, source }
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io("create its directory"))?;
        }
        remove_stale(path)?;
        let listener = UnixListener::bind(path).map_err(io("bind"))?;
        // Bound with the process umask (0022 at most leaves the socket
        // unwritable, so unconnectable, by others); narrowed to the owner
        // before the first accept.
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(io("set mode 0600"))?;
        let meta = std::fs::metadata(path).map_err(io("stat"))?;
        let (sender, requests) = mpsc::sync_channel(QUEUE);
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("btb-control-socket".into())
                .spawn(move || accept_loop(listener, sender, stop))
                .map_err(io("start its thread"))?
        };
        info!("operator commands on {shown}");
        Ok(OperatorServer {
            path: path.to_path_buf(),
            identity: (meta.dev(), meta.ino()),
            requests,
            stop,
            thread: Some(thread),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The next queued request, if any. Never blocks.
    pub fn next_request(&self) -> Option<PendingRequest> {
        self.requests.try_recv().ok()
    }
}

impl Drop for OperatorServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // accept() returns only on a connection: make one to let it see `stop`.
        let woke = UnixStream::connect(&self.path).is_ok();
        if let Some(t) = self.thread.take().filter(|_| woke) {
            let _ = t.join();
        }
        let ours = std::fs::symlink_metadata(&self.path)
            .is_ok_and(|m| (m.dev(), m.ino()) == self.identity);
        if ours {
            if let Err(e) = std::fs::remove_file(&self.path) {
                warn!("cannot remove control socket {}: {e}", self.path.display());
            }
        }
    }
}

/// A socket file nobody answers on is left over from a daemon that did not
/// stop cleanly: remove it. One somebody answers on belongs to a live daemon.
fn remove_stale(path: &Path) -> Result<(), ServerError> {
    let shown = || path.display().to_string();
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    if !meta.file_type().is_socket() {
        return Err(ServerError::NotASocket { path: shown() });
    }
    if UnixStream::connect(path).is_ok() {
        return Err(ServerError::AlreadyRunning { path: shown() });
    }
    info!("removing stale control socket {}", shown());
    std::fs::remove_file(path).map_err(|source| ServerError::Io {
        path: shown(),
        what: "remove the stale socket",
        source,
    })
}

fn accept_loop(listener: UnixListener, sender: SyncSender<PendingRequest>, stop: Arc<AtomicBool>) {
    let active = Arc::new(AtomicUsize::new(0));
    for conn in listener.incoming() {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let Ok(stream) = conn else { continue };
        if active.fetch_add(1, Ordering::AcqRel) >= MAX_CONNECTIONS {
            active.fetch_sub(1, Ordering::AcqRel);
            send_reply(
                &stream,
                &Reply::error("busy: too many operator connections"),
            );
            continue;
        }
        let (sender, done) = (sender.clone(), Arc::clone(&active));
        let spawned = std::thread::Builder::new()
            .name("btb-control-conn".into())
            .spawn(move || {
                serve_connection(&stream, &sender);
                done.fetch_sub(1, Ordering::AcqRel);
            });
        if spawned.is_err() {
            active.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// Reads one request line, waits for the control loop's reply, writes it.
fn serve_connection(stream: &UnixStream, sender: &SyncSender<PendingRequest>) {
    let _ = stream.set_read_timeout(Some(READ_TIMEOUT));
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let mut line = Vec::new();
    // One byte more than allowed: enough to tell "too long" from "just fits".
    let mut reader = BufReader::new(stream.take(MAX_REQUEST_BYTES as u64 + 1));
    if reader.read_until(b'\n', &mut line).is_err() {
        send_reply(stream, &Reply::error("no request line received in time"));
        return;
    }
    let reply = match parse_request(&line) {
        Err(e) => Reply::error(e.to_string()),
        Ok(request) => forward(request, sender),
    };
    send_reply(stream, &reply);
}

fn forward(request: Request, sender: &SyncSender<PendingRequest>) -> Reply {
    let (reply_tx, reply_rx) = mpsc::sync_channel(1);
    let pending = PendingRequest {
        request,
        reply: reply_tx,
    };
    match sender.try_send(pending) {
        Ok(()) => {}
        Err(TrySendError::Full(_)) => return Reply::error("busy: too many queued commands"),
        Err(TrySendError::Disconnected(_)) => return Reply::error("the daemon is stopping"),
    }
    match reply_rx.recv_timeout(REPLY_TIMEOUT) {
        Ok(reply) => reply,
        Err(RecvTimeoutError::Timeout) => Reply::error("the daemon did not answer in time"),
        Err(RecvTimeoutError::Disconnected) => Reply::error("the daemon is stopping"),
    }
}

fn send_reply(mut stream: &UnixStream, reply: &Reply) {
    let _ = stream.write_all(reply.to_line().as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn scratch(name: &str) -> tempfile::TempDir {
        tempfile::Builder::new().prefix(name).tempdir().unwrap()
    }

    /// Sends `raw` and returns the reply line.
    fn talk(path: &Path, raw: &[u8]) -> String {
        let mut s = UnixStream::connect(path).unwrap();
        s.write_all(raw).unwrap();
        let _ = s.shutdown(std::net::Shutdown::Write);
        let mut reply = String::new();
        s.read_to_string(&mut reply).unwrap();
        reply
    }

    /// Answers requests on the test's "control loop" until `n` are done.
    fn answer_n(server: &OperatorServer, n: usize) -> Vec<Request> {
        let mut seen = Vec::new();
        let guard = Instant::now();
        while seen.len() < n {
            assert!(guard.elapsed() < Duration::from_secs(30), "hang guard");
            match server.next_request() {
                Some(p) => {
                    seen.push(p.request.clone());
                    p.answer(Reply::Flushed {
                        ok: true,
                        removed: seen.len(),
                    });
                }
                None => std::thread::sleep(Duration::from_millis(1)),
            }
        }
        seen
    }

    #[test]
    fn requests_reach_the_control_loop_and_replies_come_back() {
        let dir = scratch("btb-srv");
        let path = dir.path().join("sub/dir/control.sock");
        let server = OperatorServer::start(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let client = {
            let path = path.clone();
            std::thread::spawn(move || talk(&path, b"{\"cmd\":\"flush\"}\n"))
        };
        assert_eq!(answer_n(&server, 1), [Request::Flush]);
        assert_eq!(client.join().unwrap(), "{\"ok\":true,\"removed\":1}\n");
        drop(server);
        assert!(!path.exists(), "a clean stop removes the socket");
    }

    #[test]
    fn bad_requests_are_answered_by_the_socket_thread_alone() {
        let dir = scratch("btb-srv-bad");
        let path = dir.path().join("c.sock");
        let server = OperatorServer::start(&path).unwrap();
        assert!(talk(&path, b"{\"cmd\":\"reboot\"}\n")
            .starts_with("{\"ok\":false,\"error\":\"bad request: unknown variant `reboot`"));
        assert_eq!(
            talk(&path, &[b' '; MAX_REQUEST_BYTES + 1]),
            "{\"ok\":false,\"error\":\"request longer than 1024 bytes\"}\n"
        );
        assert_eq!(
            talk(&path, b"\n"),
            "{\"ok\":false,\"error\":\"empty request\"}\n"
        );
        assert!(server.next_request().is_none(), "nothing was forwarded");
    }

    #[test]
    fn a_silent_client_blocks_nobody() {
        let dir = scratch("btb-srv-silent");
        let path = dir.path().join("c.sock");
        let server = OperatorServer::start(&path).unwrap();
        let silent = UnixStream::connect(&path).unwrap();
        let client = {
            let path = path.clone();
            std::thread::spawn(move || talk(&path, b"{\"cmd\":\"list\"}"))
        };
        assert_eq!(
            answer_n(&server, 1),
            [Request::List {
                after: None,
                limit: None
            }]
        );
        assert_eq!(client.join().unwrap(), "{\"ok\":true,\"removed\":1}\n");
        // The silent one is told off once its read timeout passes.
        let mut reply = String::new();
        (&silent).read_to_string(&mut reply).unwrap();
        assert_eq!(
            reply,
            "{\"ok\":false,\"error\":\"no request line received in time\"}\n"
        );
    }

    #[test]
    fn a_live_socket_is_refused_and_a_stale_one_replaced() {
        let dir = scratch("btb-srv-twice");
        let path = dir.path().join("c.sock");
        let first = OperatorServer::start(&path).unwrap();
        let err = OperatorServer::start(&path)
            .err()
            .expect("second start refused");
        assert!(matches!(err, ServerError::AlreadyRunning { .. }), "{err}");
        assert!(err
            .to_string()
            .starts_with("another btblocker is already running"));
        drop(first);
        // A socket file nobody listens on: what kill -9 leaves behind.
        drop(UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let second = OperatorServer::start(&path).unwrap();
        drop(second);
        std::fs::write(&path, "not a socket").unwrap();
        let err = OperatorServer::start(&path)
            .err()
            .expect("a plain file is kept");
        assert!(matches!(err, ServerError::NotASocket { .. }), "{err}");
    }
}
