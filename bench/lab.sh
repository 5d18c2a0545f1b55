#!/usr/bin/env bash
# The benchmark lab by hand, for comparison with nslab:
#   lab.sh up|down N single|batch
# single: one `ip` process per operation (what a typical lab script does);
# batch:  `ip -batch` (one process for the program's namespace, one per namespace).
set -euo pipefail
op=$1 n=$2 mode=$3
addr() { local i=$(( $1 + 2 )); echo "10.200.$(( i >> 8 )).$(( i & 255 ))"; }

if [ "$mode" = single ]; then
  if [ "$op" = up ]; then
    ip link add name bbr0 type bridge
    ip addr add 10.200.0.1/16 dev bbr0
    ip link set bbr0 up
    for ((i = 0; i < n; i++)); do
      ip netns add "b$i"
      ip -n "b$i" link set lo up
      ip link add name "bp$i" type veth peer name eth0 netns "b$i"
      ip link set "bp$i" master bbr0
      ip link set "bp$i" up
      ip -n "b$i" addr add "$(addr $i)/16" dev eth0
      ip -n "b$i" link set eth0 up
      ip -n "b$i" route add default via 10.200.0.1
    done
    sysctl -q -w net.ipv4.ip_forward=1
    nft add table inet bench
    nft add chain inet bench postrouting '{ type nat hook postrouting priority srcnat; policy accept; }'
    nft add rule inet bench postrouting ip saddr 10.200.0.0/16 oifname bup0 masquerade
  else
    nft delete table inet bench
    sysctl -q -w net.ipv4.ip_forward=0
    for ((i = 0; i < n; i++)); do ip netns delete "b$i"; done
    ip link del bbr0
  fi
else
  tmp=$(mktemp)
  if [ "$op" = up ]; then
    {
      echo "link add name bbr0 type bridge"
      echo "address add 10.200.0.1/16 dev bbr0"
      echo "link set bbr0 up"
      for ((i = 0; i < n; i++)); do echo "netns add b$i"; done
      for ((i = 0; i < n; i++)); do
        echo "link add name bp$i type veth peer name eth0 netns b$i"
        echo "link set bp$i master bbr0"
        echo "link set bp$i up"
      done
    } > "$tmp"
    ip -batch "$tmp"
    for ((i = 0; i < n; i++)); do
      printf 'link set lo up\naddress add %s/16 dev eth0\nlink set eth0 up\nroute add default via 10.200.0.1\n' "$(addr $i)" | ip -n "b$i" -batch -
    done
    sysctl -q -w net.ipv4.ip_forward=1
    printf '%s\n' 'add table inet bench' 'add chain inet bench postrouting { type nat hook postrouting priority srcnat; policy accept; }' \
      'add rule inet bench postrouting ip saddr 10.200.0.0/16 oifname bup0 masquerade' | nft -f -
  else
    echo 'delete table inet bench' | nft -f -
    sysctl -q -w net.ipv4.ip_forward=0
    { for ((i = 0; i < n; i++)); do echo "netns delete b$i"; done; echo "link del bbr0"; } > "$tmp"
    ip -batch "$tmp"
  fi
  rm -f "$tmp"
fi
