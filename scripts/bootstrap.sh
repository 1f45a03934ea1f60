#!/usr/bin/env bash
# Idempotent set-up for a fresh machine: system packages, the Python venv, the C meter.
#   scripts/bootstrap.sh run    what the main job needs
#   scripts/bootstrap.sh test   plus what the tests need (sanitizers, fuzzer, valgrind, tcpreplay)
set -euo pipefail
cd "$(dirname "$0")/.."
level=${1:-run}

apt_pkgs=(libpcap-dev make gcc iproute2)
if [ "$level" = test ]; then
  apt_pkgs+=(clang llvm libclang-rt-14-dev valgrind tcpreplay tcpdump)
  apt_pkgs+=(postgresql)  # model: the PostgreSQL-backed mlflow server of tests/serve
  apt_pkgs+=(nmap util-linux)  # serve: live SYN-scan test (nmap), capture as nobody (setpriv)
  apt_pkgs+=(nmap masscan hydra patator slowhttptest hping3 sqlmap openssh-server vsftpd dnsmasq-base sshpass ethtool curl dnsutils python3-flask iputils-ping)  # lab
  apt_pkgs+=(nginx-light unbound knot-dnsutils avahi-daemon chrony radvd ndisc6 dovecot-imapd python3-aiosmtpd samba smbclient rsync git mosquitto mosquitto-clients redis-server redis-tools slapd ldap-utils snmpd snmp rsyslog aria2 chromium traceroute udhcpc python3-websockets)  # lab catalogue
fi

missing=()
for p in "${apt_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "bootstrap: installing system packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Python venv, reinstalled only when pyproject.toml or constraints.txt changed.
stamp=.venv/.netsentry-installed
if [ ! -x .venv/bin/python ]; then
  echo "bootstrap: creating .venv"
  python3 -m venv .venv
fi
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ constraints.txt -nt "$stamp" ]; then
  echo "bootstrap: installing Python dependencies (pinned by constraints.txt)"
  .venv/bin/pip install -q --upgrade pip >/dev/null
  .venv/bin/pip install -q -c constraints.txt -e '.[dev]'
  touch "$stamp"
fi

# The C meter.
if [ -f capture/main.c ]; then
  make -s -C capture
fi
echo "bootstrap: ready ($level)"
