//! The calls the BGP thread makes to gobgpd, over its Unix socket.
use std::path::Path;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};
use tonic::{Status, Streaming};

use super::api::{self, gobgp_api_client::GobgpApiClient};
use super::reconcile::Routes;
use super::route::{self, RouteSettings, LC_BOX, LC_EXPIRY};

pub type Api = GobgpApiClient<Channel>;

/// Paths per AddPathStream message: big enough that 100 k bans are a
/// hundred messages, small enough to stay far below gRPC's 4 MiB cap.
const PATHS_PER_MESSAGE: usize = 1000;

/// Connects to gobgpd's API on the Unix socket at `path` (eagerly: an
/// absent daemon is an error now, not at the first call).
pub async fn connect(path: &Path) -> Result<Api, tonic::transport::Error> {
    let path = path.to_path_buf();
    // The URI is required by the API but unused: the connector dials the socket.
    let channel = Endpoint::from_static("http://gobgpd.invalid")
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(60))
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move { UnixStream::connect(path).await.map(TokioIo::new) }
        }))
        .await?;
    Ok(GobgpApiClient::new(channel).max_decoding_message_size(64 << 20))
}

/// Announces and withdraws `paths` in one AddPathStream call; gobgpd has
/// applied them all to its RIB when it returns.
pub async fn send(api: &mut Api, paths: Vec<api::Path>) -> Result<(), Status> {
    if paths.is_empty() {
        return Ok(());
    }
    let mut messages = Vec::with_capacity(paths.len().div_ceil(PATHS_PER_MESSAGE));
    let mut rest = paths.into_iter().peekable();
    while rest.peek().is_some() {
        messages.push(api::AddPathStreamRequest {
            table_type: api::TableType::Global as i32,
            vrf_id: String::new(),
            paths: rest.by_ref().take(PATHS_PER_MESSAGE).collect(),
        });
    }
    api.add_path_stream(tokio_stream::iter(messages)).await?;
    Ok(())
}

/// Our routes in gobgpd's global RIB: originated locally and tagged with
/// our box id (an operator's own routes in the same daemon are left alone).
pub async fn list_ours(api: &mut Api, s: &RouteSettings) -> Result<Routes, Status> {
    let mut held = Routes::default();
    for family in route::all_families() {
        let flowspec = family.safi == api::family::Safi::FlowSpecUnicast as i32;
        let request = api::ListPathRequest {
            table_type: api::TableType::Global as i32,
            family: Some(family),
            ..Default::default()
        };
        let mut stream = match api.list_path(request).await {
            Ok(s) => s.into_inner(),
            // A family gobgpd's RIB does not carry holds nothing of ours.
            Err(_) if flowspec => continue,
            Err(e) => return Err(e),
        };
        while let Some(reply) = stream.message().await? {
            for path in reply.destination.map(|d| d.paths).unwrap_or_default() {
                let Some(seen) = route::parse(&path) else {
                    continue;
                };
                if seen.neighbor.is_none()
                    && seen.large_value(s.local_asn, LC_BOX) == Some(s.box_id)
                {
                    let expiry = seen.large_value(s.local_asn, LC_EXPIRY).unwrap_or(0);
                    held.insert(seen.route, expiry);
                }
            }
        }
    }
    Ok(held)
}

/// Peers whose session is established.
pub async fn established_peers(api: &mut Api) -> Result<usize, Status> {
    let mut stream = api
        .list_peer(api::ListPeerRequest::default())
        .await?
        .into_inner();
    let mut n = 0;
    while let Some(reply) = stream.message().await? {
        let state = reply.peer.and_then(|p| p.state).map(|s| s.session_state);
        if state == Some(api::peer_state::SessionState::Established as i32) {
            n += 1;
        }
    }
    Ok(n)
}

/// Peer events and, with `table`, the best-path table (dumped first, then
/// every change). The stream also tells us when gobgpd dies: the channel
/// itself reconnects silently, so a restarted (empty) daemon would go
/// unnoticed without it.
pub async fn watch(
    api: &mut Api,
    table: bool,
) -> Result<Streaming<api::WatchEventResponse>, Status> {
    use api::watch_event_request::{table::filter::Type, table::Filter, Peer, Table};
    let request = api::WatchEventRequest {
        peer: Some(Peer {}),
        table: table.then(|| Table {
            filters: vec![Filter {
                r#type: Type::Best as i32,
                init: true,
            }],
        }),
    };
    Ok(api.watch_event(request).await?.into_inner())
}
