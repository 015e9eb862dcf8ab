# Benign look-alikes for the capture lab (sourced by scripts/capture-lab.sh,
# which provides add_host, addr_of, rand_port, cap_start/cap_stop, ROLES, WORK,
# SCEN, PY, lab). Each function records one pcap: encrypted or structureless
# bulk traffic both ways that a BitTorrent detector must never ban.

# in NS CMD...: run in a lab namespace, output to the scenario's log.
in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@" >>"$WORK/$SCEN/run.log" 2>&1; }
bg_ns() { local ns=$1; shift; ip netns exec "$ns" "$@" >>"$WORK/$SCEN/run.log" 2>&1 & }

wait_port() { # ns port
  local i
  for i in $(seq 100); do
    ip netns exec "$1" ss -ltnH "sport = :$2" | grep -q . && return 0
    sleep 0.1
  done
  die "$SCEN: nothing listens on port $2 in $1 (see $WORK/$SCEN/run.log)"
}

# TLS 1.3 (python ssl, self-signed cert): three flows, sizes differ per flow and direction.
benign_tls() {
  local d="$WORK/$SCEN" port up dn
  add_host lab-c11 11
  add_host lab-c12 12
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=lab.example -keyout "$d/key.pem" \
    -out "$d/cert.pem" >>"$d/run.log" 2>&1
  port=$(rand_port)
  bg_ns lab-c12 $PY "$lab/bulk.py" serve tls "$(addr_of 12)" "$port" 0 "$d/cert.pem" "$d/key.pem"
  wait_port lab-c12 "$port"
  ROLES+=("$(addr_of 11)	never	TLS 1.3 client (python ssl, OpenSSL $(openssl version | cut -d' ' -f2))")
  ROLES+=("$(addr_of 12)	never	TLS 1.3 server, port $port")
  cap_start "$SCEN"
  for up_dn in "200000 1500000" "1200000 100000" "400000 400000"; do
    read -r up dn <<<"$up_dn"
    in_ns lab-c11 $PY "$lab/bulk.py" send tls "$(addr_of 12)" "$port" "$up" "$dn" || die "$SCEN: TLS flow failed"
  done
  cap_stop "$SCEN"
}

# sshd_up NS IDX PORT: OpenSSH sshd on that host and port, root login by a fresh
# key ($WORK/$SCEN/client_key); SSH_OPTS holds the client options.
sshd_up() {
  local ns=$1 idx=$2 port=$3 d="$WORK/$SCEN"
  mkdir -p "$d/sshd" /run/sshd
  rm -f "$d/sshd/host_key" "$d/client_key"
  ssh-keygen -q -t ed25519 -N '' -f "$d/sshd/host_key"
  ssh-keygen -q -t ed25519 -N '' -f "$d/client_key"
  cp "$d/client_key.pub" "$d/sshd/authorized_keys"
  cat >"$d/sshd/sshd_config" <<CONF
Port $port
ListenAddress $(addr_of "$idx")
HostKey $d/sshd/host_key
AuthorizedKeysFile $d/sshd/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PidFile $d/sshd/sshd.pid
Subsystem sftp internal-sftp
CONF
  bg_ns "$ns" /usr/sbin/sshd -D -e -f "$d/sshd/sshd_config"
  wait_port "$ns" "$port"
  SSH_OPTS=(-i "$d/client_key" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes)
}

# OpenSSH: scp a 1.5 MB file up, another down, then a short ssh command.
benign_ssh() {
  local d="$WORK/$SCEN" port
  add_host lab-c11 11
  add_host lab-c12 12
  port=$(rand_port)
  sshd_up lab-c12 12 "$port"
  head -c 1500000 /dev/urandom >"$d/up.bin"
  head -c 1500000 /dev/urandom >"$d/down.bin"
  ROLES+=("$(addr_of 11)	never	SSH client ($(ssh -V 2>&1 | cut -d, -f1))")
  ROLES+=("$(addr_of 12)	never	sshd, port $port")
  local o=("${SSH_OPTS[@]}")
  cap_start "$SCEN"
  in_ns lab-c11 scp "${o[@]}" -P "$port" "$d/up.bin" "root@$(addr_of 12):$d/up.copy" || die "$SCEN: scp up failed"
  in_ns lab-c11 scp "${o[@]}" -P "$port" "root@$(addr_of 12):$d/down.bin" "$d/down.copy" || die "$SCEN: scp down failed"
  in_ns lab-c11 ssh "${o[@]}" -p "$port" "root@$(addr_of 12)" uname -a || die "$SCEN: ssh failed"
  cap_stop "$SCEN"
  cmp -s "$d/up.bin" "$d/up.copy" && cmp -s "$d/down.bin" "$d/down.copy" || die "$SCEN: scp copies differ"
}

# Structureless random bytes, both directions at once, several flows and ports.
benign_raw() {
  local i port up dn
  add_host lab-c11 11
  add_host lab-c12 12
  ROLES+=("$(addr_of 11)	never	random-byte stream client (python bulk.py raw)")
  ROLES+=("$(addr_of 12)	never	random-byte stream server")
  # Flow 3 is tiny (600 bytes each way), the size of an MSE first flight.
  local flows=("300000 900000" "900000 300000" "50000 50000" "600 600" "700000 20000") ports=()
  for i in 0 1 2 3 4; do ports+=("$(rand_port)"); done
  for i in 0 1 2 3 4; do
    read -r up dn <<<"${flows[$i]}"
    bg_ns lab-c12 $PY "$lab/bulk.py" serve raw "$(addr_of 12)" "${ports[$i]}" "$dn"
  done
  for i in 0 1 2 3 4; do wait_port lab-c12 "${ports[$i]}"; done
  cap_start "$SCEN"
  for i in 0 1 2 3 4; do
    read -r up dn <<<"${flows[$i]}"
    in_ns lab-c11 $PY "$lab/bulk.py" send raw "$(addr_of 12)" "${ports[$i]}" "$up" "$dn" || die "$SCEN: raw flow $i failed"
  done
  # Two more with socat, the server side sending first.
  port=$(rand_port)
  head -c 400000 /dev/urandom >"$WORK/$SCEN/socat.bin"
  bg_ns lab-c12 socat -u "OPEN:$WORK/$SCEN/socat.bin" "TCP-LISTEN:$port,bind=$(addr_of 12),reuseaddr"
  wait_port lab-c12 "$port"
  in_ns lab-c11 socat -u "TCP:$(addr_of 12):$port" "OPEN:$WORK/$SCEN/socat.copy,creat,trunc"
  cmp -s "$WORK/$SCEN/socat.bin" "$WORK/$SCEN/socat.copy" || die "$SCEN: socat copy differs"
  cap_stop "$SCEN"
}

# Shadowsocks (AEAD chacha20-ietf-poly1305): ss-local in c11, ss-server in c12,
# the web server on c12's loopback, so the bridge carries only the ss flows.
benign_ss() {
  local d="$WORK/$SCEN" sport hport n
  add_host lab-c11 11
  add_host lab-c12 12
  sport=$(rand_port) hport=$(rand_port)
  bg_ns lab-c12 $PY "$lab/bulk.py" serve http 127.0.0.1 "$hport" 0
  bg_ns lab-c12 ss-server -s "$(addr_of 12)" -p "$sport" -k lab-password-42 -m chacha20-ietf-poly1305
  bg_ns lab-c11 ss-local -s "$(addr_of 12)" -p "$sport" -l 1080 -b 127.0.0.1 -k lab-password-42 -m chacha20-ietf-poly1305
  wait_port lab-c12 "$hport"
  wait_port lab-c12 "$sport"
  wait_port lab-c11 1080
  ROLES+=("$(addr_of 11)	never	shadowsocks client (ss-local $(dpkg-query -W -f='${Version}' shadowsocks-libev), curl through SOCKS5)")
  ROLES+=("$(addr_of 12)	never	shadowsocks server (ss-server, chacha20-ietf-poly1305), port $sport")
  cap_start "$SCEN"
  for n in 1500000 300000 2000000; do
    in_ns lab-c11 curl -sS -o /dev/null --socks5-hostname 127.0.0.1:1080 "http://127.0.0.1:$hport/$n" ||
      die "$SCEN: fetch through shadowsocks failed"
  done
  head -c 800000 /dev/urandom >"$d/up.bin"
  in_ns lab-c11 curl -sS -o /dev/null -T "$d/up.bin" --socks5-hostname 127.0.0.1:1080 "http://127.0.0.1:$hport/up" ||
    die "$SCEN: upload through shadowsocks failed"
  cap_stop "$SCEN"
}

# obfs4_bridge_up NS IDX: a private tor bridge (ServerTransportPlugin obfs4, no
# descriptor published) on that host. Sets OBFS4_PORT, OBFS4_ORPORT and
# OBFS4_BRIDGE (the client's "Bridge obfs4 ..." line).
obfs4_bridge_up() {
  local ns=$1 idx=$2 d="$WORK/$SCEN" i fp cert
  OBFS4_ORPORT=$(rand_port) OBFS4_PORT=$(rand_port)
  mkdir -p "$d/bridge"
  chmod 700 "$d/bridge"
  cat >"$d/bridge.torrc" <<CONF
DataDirectory $d/bridge
Log notice file $d/bridge.log
SocksPort 0
Address $(addr_of "$idx")
ORPort $(addr_of "$idx"):$OBFS4_ORPORT
AssumeReachable 1
BridgeRelay 1
PublishServerDescriptor 0
ExtORPort auto
ServerTransportPlugin obfs4 exec /usr/bin/obfs4proxy
ServerTransportListenAddr obfs4 $(addr_of "$idx"):$OBFS4_PORT
ServerTransportOptions obfs4 iat-mode=0
Nickname lab
ContactInfo lab
CONF
  bg_ns "$ns" tor -f "$d/bridge.torrc" --RunAsDaemon 0
  for i in $(seq 300); do
    [ -s "$d/bridge/pt_state/obfs4_bridgeline.txt" ] && [ -s "$d/bridge/fingerprint" ] && break
    sleep 0.2
  done
  wait_port "$ns" "$OBFS4_PORT"
  fp=$(cut -d' ' -f2 "$d/bridge/fingerprint")
  cert=$(grep -o 'cert=[^ ]*' "$d/bridge/pt_state/obfs4_bridgeline.txt")
  [ -n "$fp" ] && [ -n "$cert" ] || die "$SCEN: the bridge wrote no fingerprint or obfs4 cert (see $d/bridge.log)"
  OBFS4_BRIDGE="obfs4 $(addr_of "$idx"):$OBFS4_PORT $fp $cert iat-mode=0"
}

# tor_clients NS N ROUND STAGE_RE LINGER: start N tor clients at once in NS (own
# data directory and SOCKS port each, a fresh identity every round), each using
# the bridge, wait until every log shows a bootstrap stage matching STAGE_RE, keep
# them LINGER seconds more, stop them. Each client opens one new flow to the bridge.
tor_clients() {
  local ns=$1 n=$2 round=$3 stage=$4 linger=$5 d="$WORK/$SCEN" k i p all
  for k in $(seq "$n"); do
    rm -rf "$d/client$k"
    mkdir -p "$d/client$k"
    chmod 700 "$d/client$k"
    cat >"$d/client$k.torrc" <<CONF
DataDirectory $d/client$k
Log notice file $d/client$k-$round.log
SocksPort 127.0.0.1:$((9049 + k))
UseBridges 1
ClientTransportPlugin obfs4 exec /usr/bin/obfs4proxy
Bridge $OBFS4_BRIDGE
CONF
    bg_ns "$ns" tor -f "$d/client$k.torrc" --RunAsDaemon 0
  done
  for i in $(seq 150); do
    all=1
    for k in $(seq "$n"); do
      grep -qE "Bootstrapped $stage" "$d/client$k-$round.log" 2>/dev/null || { all=0; break; }
    done
    [ $all = 1 ] && break
    sleep 0.2
  done
  sleep "$linger"
  for p in $(ip netns pids "$ns"); do kill -TERM "$p" 2>/dev/null || true; done
  for i in $(seq 50); do [ -z "$(ip netns pids "$ns")" ] && break; sleep 0.1; done
  [ $all = 1 ] || die "$SCEN: round $round: not every tor client reached 'Bootstrapped $stage' (see $d)"
}

# Tor with obfs4proxy: a bridge in c12 and a tor client in c11 using it. There is
# no directory network, so the client gets no further than the obfs4 handshake,
# its TLS link and a few directory requests to the bridge: the handshake is what
# matters. Three client restarts give three obfs4 flows.
benign_obfs4() {
  local round n
  add_host lab-c11 11
  add_host lab-c12 12
  obfs4_bridge_up lab-c12 12
  ROLES+=("$(addr_of 11)	never	tor client ($(tor --version | head -1 | cut -d' ' -f3 | sed 's|\.$||')) using the obfs4 bridge")
  ROLES+=("$(addr_of 12)	never	tor bridge, obfs4proxy $(obfs4proxy -version | cut -d- -f2) on port $OBFS4_PORT (ORPort $OBFS4_ORPORT not used)")
  cap_start "$SCEN"
  # Up to "loading_status": the client has asked the bridge for a consensus.
  for round in 1 2 3; do tor_clients lab-c11 1 "$round" '(1[0-9]|[2-9][0-9])%' 3; done
  cap_stop "$SCEN"
  n=$(tshark -r "$WORK/$SCEN.pcap" -Y "tcp.port == $OBFS4_PORT && tcp.len > 0" 2>/dev/null | wc -l)
  [ "$n" -gt 6 ] || die "$SCEN: no obfs4 exchange on port $OBFS4_PORT ($n data segments; see $WORK/$SCEN)"
  grep -h Bootstrapped "$WORK/$SCEN"/client1-*.log | tail -n 3 >&2
}

# syn_count PORT: TCP connections opened to PORT in this scenario's capture.
syn_count() {
  tshark -r "$WORK/$SCEN.pcap" -Y "tcp.flags.syn == 1 && tcp.flags.ack == 0 && tcp.dstport == $1" 2>/dev/null | wc -l
}

# Many short flows whose openings look like the MSE envelope (random-looking
# bytes from the first payload byte, a few flights of a few hundred bytes each
# way): a detector's false-positive rate only shows over many flows. Every flow
# stays under 64 KiB (checked). One host pair per protocol:
#   c11 -> c12  tor clients -> obfs4 bridge, 24 handshakes (4 clients x 6 rounds)
#   c13 -> c14  curl via ss-local -> ss-server, 20 chacha20-ietf-poly1305 + 20 aes-256-gcm
#   c15 -> c16  pingpong.py: MSE-shaped random flights, 120 flows to one port
#   c17 -> c18  TLS 1.3 (python ssl), 30 short sessions
#   c19 -> c20  OpenSSH, 12 short sessions
benign_envelope() {
  local d="$WORK/$SCEN" i round n up dn ss1 ss2 hport pp tls ssh m
  for i in $(seq 11 20); do add_host "lab-c$i" "$i"; done
  local ssv
  ssv=$(dpkg-query -W -f='${Version}' shadowsocks-libev)

  obfs4_bridge_up lab-c12 12
  ROLES+=("$(addr_of 11)	never	tor clients ($(tor --version | head -1 | cut -d' ' -f3 | sed 's|\.$||')) using the obfs4 bridge")
  ROLES+=("$(addr_of 12)	never	tor bridge, obfs4proxy $(obfs4proxy -version | cut -d- -f2) on port $OBFS4_PORT (ORPort $OBFS4_ORPORT not used)")

  ss1=$(rand_port) ss2=$(rand_port) hport=$(rand_port)
  bg_ns lab-c14 $PY "$lab/bulk.py" serve http 127.0.0.1 "$hport" 0
  bg_ns lab-c14 ss-server -s "$(addr_of 14)" -p "$ss1" -k lab-password-42 -m chacha20-ietf-poly1305
  bg_ns lab-c14 ss-server -s "$(addr_of 14)" -p "$ss2" -k lab-password-43 -m aes-256-gcm
  bg_ns lab-c13 ss-local -s "$(addr_of 14)" -p "$ss1" -l 1080 -b 127.0.0.1 -k lab-password-42 -m chacha20-ietf-poly1305
  bg_ns lab-c13 ss-local -s "$(addr_of 14)" -p "$ss2" -l 1081 -b 127.0.0.1 -k lab-password-43 -m aes-256-gcm
  wait_port lab-c14 "$hport"; wait_port lab-c14 "$ss1"; wait_port lab-c14 "$ss2"
  wait_port lab-c13 1080; wait_port lab-c13 1081
  ROLES+=("$(addr_of 13)	never	shadowsocks client (ss-local $ssv, curl through SOCKS5, one connection per request)")
  ROLES+=("$(addr_of 14)	never	shadowsocks server (ss-server $ssv), chacha20-ietf-poly1305 on port $ss1, aes-256-gcm on port $ss2")

  pp=$(rand_port)
  bg_ns lab-c16 $PY "$lab/pingpong.py" serve "$(addr_of 16)" "$pp"
  wait_port lab-c16 "$pp"
  ROLES+=("$(addr_of 15)	never	random ping-pong client (pingpong.py: MSE-shaped random flights)")
  ROLES+=("$(addr_of 16)	never	random ping-pong server, port $pp")

  tls=$(rand_port)
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=lab.example -keyout "$d/key.pem" \
    -out "$d/cert.pem" >>"$d/run.log" 2>&1
  bg_ns lab-c18 $PY "$lab/bulk.py" serve tls "$(addr_of 18)" "$tls" 0 "$d/cert.pem" "$d/key.pem"
  wait_port lab-c18 "$tls"
  ROLES+=("$(addr_of 17)	never	TLS 1.3 client (python ssl, OpenSSL $(openssl version | cut -d' ' -f2)), short sessions")
  ROLES+=("$(addr_of 18)	never	TLS 1.3 server, port $tls")

  ssh=$(rand_port)
  sshd_up lab-c20 20 "$ssh"
  ROLES+=("$(addr_of 19)	never	SSH client ($(ssh -V 2>&1 | cut -d, -f1)), short sessions")
  ROLES+=("$(addr_of 20)	never	sshd, port $ssh")

  cap_start "$SCEN"
  # obfs4: up to "handshake_done"/"onehop_create" (the link is up), then 1 s more.
  for round in 1 2 3 4 5 6; do tor_clients lab-c11 4 "$round" '(1[5-9]|[2-9][0-9])%' 1; done
  for i in $(seq 20); do
    for m in 1080 1081; do
      n=$((500 + RANDOM % 50000))
      if [ $((i % 5)) = 0 ]; then
        head -c "$n" /dev/urandom >"$d/up.bin"
        in_ns lab-c13 curl -sS -o /dev/null -T "$d/up.bin" --socks5-hostname "127.0.0.1:$m" "http://127.0.0.1:$hport/up" ||
          die "$SCEN: upload through shadowsocks ($m) failed"
      else
        in_ns lab-c13 curl -sS -o /dev/null --socks5-hostname "127.0.0.1:$m" "http://127.0.0.1:$hport/$n" ||
          die "$SCEN: fetch through shadowsocks ($m) failed"
      fi
    done
  done
  in_ns lab-c15 $PY "$lab/pingpong.py" send "$(addr_of 16)" "$pp" 120 || die "$SCEN: ping-pong failed"
  for i in $(seq 30); do
    up=$((200 + RANDOM % 25000)) dn=$((200 + RANDOM % 25000))
    in_ns lab-c17 $PY "$lab/bulk.py" send tls "$(addr_of 18)" "$tls" "$up" "$dn" || die "$SCEN: TLS session $i failed"
  done
  for i in $(seq 12); do
    if [ $((i % 3)) = 0 ]; then
      in_ns lab-c19 ssh "${SSH_OPTS[@]}" -p "$ssh" "root@$(addr_of 20)" uname -a || die "$SCEN: ssh $i failed"
    else
      in_ns lab-c19 ssh "${SSH_OPTS[@]}" -p "$ssh" "root@$(addr_of 20)" \
        "head -c $((100 + RANDOM % 20000)) /dev/urandom | base64" || die "$SCEN: ssh $i failed"
    fi
  done
  cap_stop "$SCEN"

  # Flow counts per protocol (connections opened to each server port) and the
  # 64 KiB bound on every flow (all frame bytes, both directions).
  local want=("$OBFS4_PORT obfs4 20" "$ss1 ss-chacha20 20" "$ss2 ss-aes256gcm 20" "$pp ping-pong 100" "$tls TLS 30" "$ssh SSH 10")
  for m in "${want[@]}"; do
    read -r i round n <<<"$m"
    [ "$(syn_count "$i")" -ge "$n" ] || die "$SCEN: only $(syn_count "$i") $round flows (want >= $n)"
    log "$SCEN: $(syn_count "$i") $round flows"
  done
  n=$(tshark -r "$WORK/$SCEN.pcap" -T fields -e tcp.stream -e frame.len 2>/dev/null |
    awk '{b[$1] += $2} END {m = 0; for (s in b) if (b[s] > m) m = b[s]; print m}')
  log "$SCEN: largest flow $n bytes"
  [ "$n" -le 65536 ] || die "$SCEN: a flow has $n bytes (> 64 KiB)"
}
