#!/usr/bin/env bash
# The benchmark's baseline: the node bundles `zone-etcd bootstrap` and `activate` write,
# made the way etcd's TLS guide and seeds/003 do it, with one `openssl genpkey`, `req`
# and `x509` per certificate. Same profile as zone-etcd: ECDSA P-256 PKCS#8 keys (0600 in
# 0700 directories), SHA-256, node CAs with critical basicConstraints (CA, pathlen 0),
# keyUsage keyCertSign+cRLSign and name constraints permitting the node's own names (plus
# etcd-peer.<zone> for members), 5-year life, random serials; node.toml beside them.
#
# usage: scripts/openssl-bootstrap.sh CA_DIR ZONE NODES_FILE MEMBERS_TOML OUT_DIR
#   NODES_FILE:   one node a line: <node_name> <address, or - for none> <member|client>
#   MEMBERS_TOML: the [[etcd]] list every node.toml carries
set -euo pipefail
ca=$1 zone=$2 nodes=$3 members=$4 out=$5

# An IP address as a name-constraint subtree of one host; anything else is a DNS name.
subtree() {
    case $1 in
    *:*) echo "IP:$1/ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff" ;;
    *[!0-9.]*) echo "DNS:$1" ;;
    *) echo "IP:$1/255.255.255.255" ;;
    esac
}

mkdir -p "$out"
while read -r name address role; do
    dir=$out/$name
    mkdir -m 700 "$dir" "$dir/pki"
    cp "$ca/ca.crt" "$dir/pki/ca.crt"
    (umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
        -out "$dir/pki/node.key")
    openssl req -new -key "$dir/pki/node.key" -subj "/O=$zone/CN=$name" -out "$dir/pki/node.csr"
    permitted="permitted;DNS:$name"
    [ "$address" = - ] || permitted+=", permitted;$(subtree "$address")"
    permitted+=", permitted;DNS:localhost, permitted;IP:127.0.0.1/255.255.255.255"
    permitted+=", permitted;IP:::1/ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
    [ "$role" = member ] && permitted+=", permitted;DNS:etcd-peer.$zone"
    cat >"$dir/pki/ext.cnf" <<CNF
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
nameConstraints = critical, $permitted
subjectKeyIdentifier = hash
authorityKeyIdentifier = none
CNF
    openssl x509 -req -in "$dir/pki/node.csr" -CA "$ca/ca.crt" -CAkey "$ca/ca.key" \
        -set_serial "0x$(openssl rand -hex 20 | sed 's/^./1/')" -days 1825 -sha256 \
        -extfile "$dir/pki/ext.cnf" -out "$dir/pki/node.crt" 2>/dev/null
    rm "$dir/pki/node.csr" "$dir/pki/ext.cnf"
    {
        printf 'name = "%s"\nzone = "%s"\nca = "pki/ca.crt"\ncert = "pki/node.crt"\nkey = "pki/node.key"\n\n' \
            "$name" "$zone"
        cat "$members"
    } >"$dir/node.toml"
done <"$nodes"
