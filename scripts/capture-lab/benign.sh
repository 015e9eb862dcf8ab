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

# OpenSSH: scp a 1.5 MB file up, another down, then a short ssh command.
benign_ssh() {
  local d="$WORK/$SCEN" port
  add_host lab-c11 11
  add_host lab-c12 12
  port=$(rand_port)
  mkdir -p "$d/sshd" /run/sshd
  ssh-keygen -q -t ed25519 -N '' -f "$d/sshd/host_key"
  ssh-keygen -q -t ed25519 -N '' -f "$d/client_key"
  cp "$d/client_key.pub" "$d/sshd/authorized_keys"
  cat >"$d/sshd/sshd_config" <<CONF
Port $port
ListenAddress $(addr_of 12)
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
  bg_ns lab-c12 /usr/sbin/sshd -D -e -f "$d/sshd/sshd_config"
  wait_port lab-c12 "$port"
  head -c 1500000 /dev/urandom >"$d/up.bin"
  head -c 1500000 /dev/urandom >"$d/down.bin"
  ROLES+=("$(addr_of 11)	never	SSH client ($(ssh -V 2>&1 | cut -d, -f1))")
  ROLES+=("$(addr_of 12)	never	sshd, port $port")
  local o=(-i "$d/client_key" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes)
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

# Tor with obfs4proxy: a private bridge in c12 (ServerTransportPlugin obfs4, no
# descriptor published) and a tor client in c11 using it. There is no directory
# network, so the client gets no further than the obfs4 handshake, its TLS link
# and a few directory requests to the bridge: the handshake is what matters.
# Several client restarts give several obfs4 flows.
benign_obfs4() {
  local d="$WORK/$SCEN" orport ptport i line fp cert round
  add_host lab-c11 11
  add_host lab-c12 12
  orport=$(rand_port) ptport=$(rand_port)
  mkdir -p "$d/bridge" "$d/client"
  chmod 700 "$d/bridge" "$d/client"
  cat >"$d/bridge.torrc" <<CONF
DataDirectory $d/bridge
Log notice file $d/bridge.log
SocksPort 0
Address $(addr_of 12)
ORPort $(addr_of 12):$orport
AssumeReachable 1
BridgeRelay 1
PublishServerDescriptor 0
ExtORPort auto
ServerTransportPlugin obfs4 exec /usr/bin/obfs4proxy
ServerTransportListenAddr obfs4 $(addr_of 12):$ptport
ServerTransportOptions obfs4 iat-mode=0
Nickname lab
ContactInfo lab
CONF
  bg_ns lab-c12 tor -f "$d/bridge.torrc" --RunAsDaemon 0
  for i in $(seq 300); do
    [ -s "$d/bridge/pt_state/obfs4_bridgeline.txt" ] && [ -s "$d/bridge/fingerprint" ] && break
    sleep 0.2
  done
  wait_port lab-c12 "$ptport"
  fp=$(cut -d' ' -f2 "$d/bridge/fingerprint")
  cert=$(grep -o 'cert=[^ ]*' "$d/bridge/pt_state/obfs4_bridgeline.txt")
  [ -n "$fp" ] && [ -n "$cert" ] || die "$SCEN: the bridge wrote no fingerprint or obfs4 cert (see $d/bridge.log)"
  ROLES+=("$(addr_of 11)	never	tor client ($(tor --version | head -1 | cut -d' ' -f3 | sed 's|\.$||')) using the obfs4 bridge")
  ROLES+=("$(addr_of 12)	never	tor bridge, obfs4proxy $(obfs4proxy -version | cut -d- -f2) on port $ptport (ORPort $orport not used)")
  cap_start "$SCEN"
  for round in 1 2 3; do
    rm -rf "$d/client"
    mkdir -p "$d/client"
    chmod 700 "$d/client"
    cat >"$d/client.torrc" <<CONF
DataDirectory $d/client
Log notice file $d/client-$round.log
SocksPort 127.0.0.1:9050
UseBridges 1
ClientTransportPlugin obfs4 exec /usr/bin/obfs4proxy
Bridge obfs4 $(addr_of 12):$ptport $fp $cert iat-mode=0
CONF
    bg_ns lab-c11 tor -f "$d/client.torrc" --RunAsDaemon 0
    local pid=$!
    for i in $(seq 100); do
      grep -qE 'Bootstrapped (1[0-9]|[2-9][0-9])%' "$d/client-$round.log" 2>/dev/null && break
      sleep 0.2
    done
    sleep 3
    local p
    for p in $(ip netns pids lab-c11); do kill -TERM "$p" 2>/dev/null || true; done
    wait "$pid" 2>/dev/null || true
    sleep 0.5
  done
  cap_stop "$SCEN"
  grep -q 'Bootstrapped' "$d/client-1.log" || die "$SCEN: the tor client did not start (see $d)"
  local n
  n=$(tshark -r "$WORK/$SCEN.pcap" -Y "tcp.port == $ptport && tcp.len > 0" 2>/dev/null | wc -l)
  [ "$n" -gt 6 ] || die "$SCEN: no obfs4 exchange on port $ptport ($n data segments; see $d)"
  grep -h Bootstrapped "$d"/client-*.log | tail -n 3 >&2
}
