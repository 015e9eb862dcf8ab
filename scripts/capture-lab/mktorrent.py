#!/usr/bin/python3
"""Make the lab's .torrent: one file, 32 KiB pieces, one HTTP tracker, not
private (so DHT and PEX may carry it when a scenario enables them)."""
import os
import sys

import libtorrent as lt

if len(sys.argv) != 4:
    sys.exit("usage: mktorrent.py DATA_FILE TRACKER_URL OUT.torrent")
data, tracker, out = sys.argv[1:]
fs = lt.file_storage()
lt.add_files(fs, data)
# v1 only: Transmission 3, aria2 and rtorrent cannot read hybrid v1+v2 torrents.
t = lt.create_torrent(fs, 32 * 1024, flags=lt.create_torrent.v1_only)
t.add_tracker(tracker)
t.set_creator("btblocker capture lab")
lt.set_piece_hashes(t, os.path.dirname(os.path.abspath(data)))
with open(out, "wb") as f:
    f.write(lt.bencode(t.generate()))
