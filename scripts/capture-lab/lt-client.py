#!/usr/bin/python3
"""A libtorrent-rasterbar (python3-libtorrent) peer for the capture lab.

Runs one torrent until SIGTERM, logging connections and completion. The
options map onto libtorrent's settings_pack so each scenario states its
policy: --enc forced makes both directions require MSE with RC4 only
(pe_forced, allowed_enc_level = pe_rc4); --enc default leaves libtorrent's own
defaults (pe_enabled: outgoing tries plaintext first, incoming accepts both).
"""
import argparse
import signal
import sys
import time

import libtorrent as lt

ap = argparse.ArgumentParser()
ap.add_argument("--listen", required=True, help="IP:PORT or [IPv6]:PORT")
ap.add_argument("--torrent", required=True)
ap.add_argument("--save", required=True)
ap.add_argument("--enc", choices=["forced", "default"], default="forced")
ap.add_argument("--transport", choices=["tcp", "utp", "both"], default="tcp")
ap.add_argument("--dht", action="store_true", help="enable DHT, LSD and PEX (defaults)")
ap.add_argument("--dht-nodes", default="", help="comma-separated host:port bootstrap nodes")
ap.add_argument("--connect", action="append", default=[], help="IP:PORT to connect to directly")
a = ap.parse_args()

s = {
    "listen_interfaces": a.listen,
    "enable_upnp": False,
    "enable_natpmp": False,
    "enable_dht": a.dht,
    "enable_lsd": a.dht,
    "dht_bootstrap_nodes": a.dht_nodes,
    "enable_outgoing_tcp": a.transport != "utp",
    "enable_incoming_tcp": a.transport != "utp",
    "enable_outgoing_utp": a.transport != "tcp",
    "enable_incoming_utp": a.transport != "tcp",
    "alert_mask": int(lt.alert.category_t.status_notification | lt.alert.category_t.error_notification
                      | lt.alert.category_t.peer_notification | lt.alert.category_t.connect_notification
                      | lt.alert.category_t.tracker_notification),
}
if a.enc == "forced":
    s["out_enc_policy"] = int(lt.enc_policy.forced)
    s["in_enc_policy"] = int(lt.enc_policy.forced)
    s["allowed_enc_level"] = int(lt.enc_level.rc4)
    s["prefer_rc4"] = True
# Without the default plugins there is no ut_pex (nor ut_metadata): peers learn
# nothing from each other beyond the connection itself.
ses = lt.session(s, 1 if a.dht else 0)
p = lt.add_torrent_params()
p.ti = lt.torrent_info(a.torrent)
p.save_path = a.save
h = ses.add_torrent(p)
stop = False


def on_term(*_):
    global stop
    stop = True


signal.signal(signal.SIGTERM, on_term)
signal.signal(signal.SIGINT, on_term)
connected = False
t0 = time.time()
while not stop:
    for al in ses.pop_alerts():
        if isinstance(al, (lt.torrent_finished_alert, lt.peer_connect_alert, lt.peer_disconnected_alert,
                           lt.tracker_error_alert, lt.tracker_reply_alert, lt.listen_failed_alert,
                           lt.listen_succeeded_alert, lt.incoming_connection_alert, lt.peer_error_alert)):
            print("%7.2f %s" % (time.time() - t0, al.message()), flush=True)
    if not connected and h.status().state in (lt.torrent_status.downloading, lt.torrent_status.seeding):
        for hp in a.connect:
            ip, _, port = hp.rpartition(":")
            h.connect_peer((ip.strip("[]"), int(port)))
        connected = True
    time.sleep(0.2)
st = h.status()
print("exit: state=%s progress=%.3f peers=%d up=%d down=%d" % (st.state, st.progress, st.num_peers,
      st.total_upload, st.total_download), flush=True)
sys.exit(0)
