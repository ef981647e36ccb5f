# shellcheck shell=bash
# Boot a throw-away Debian 12 with systemd as PID 1 in systemd-nspawn, and run
# commands in it. Sourced by packaging/e2e-systemd.sh.
#
# What works on machines whose PID 1 is not systemd (see
# ../shared/notes/systemd-in-a-container.md in the team notes):
#   - the rootfs comes from debootstrap, cached as a tarball keyed by its inputs,
#     unpacked once next to it, and every run boots an overlayfs over that copy;
#   - `systemd-nspawn --register=no --keep-unit` (the host has no systemd bus),
#     started inside a fresh cgroup of its own (named + unified hierarchies) so
#     that parallel or leftover runs cannot clobber each other;
#   - commands enter the container with nsenter on the container's PID 1.
#
# Everything this file starts or mounts is undone by ct_cleanup (called from the
# caller's EXIT trap), whatever state the run is in.

CT_SUITE=bookworm
CT_INCLUDE=systemd,systemd-sysv,dbus,libpam-systemd,dbus-user-session,ca-certificates,curl,jq,procps,man-db
CT_TEST_USER=tester
CT_TEST_UID=1000
CT_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

CT_RUN_DIR=""
CT_ROOT=""
CT_NSPAWN_PID=""
CT_PID1=""
CT_CGROUPS=()
CT_MOUNTED=0

ct_log() { printf '    %s\n' "$*" >&2; }

# The Debian mirror the host's apt uses (the only one reachable here).
ct_mirror() {
  local uri
  uri=$(grep -hsE '^(URIs:|deb) ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
    grep -oE 'https?://[^ ]*/debian/?( |$)' | grep -v security | head -n1 | tr -d ' ') || true
  echo "${uri:-http://deb.debian.org/debian}"
}

# Install the host tools the test needs, once, when they are missing.
ct_host_tools() {
  local missing=()
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  command -v systemd-nspawn >/dev/null || missing+=(systemd-container)
  command -v nsenter >/dev/null || missing+=(util-linux)
  command -v zstd >/dev/null || missing+=(zstd)
  command -v curl >/dev/null || missing+=(curl)
  if [ ${#missing[@]} -gt 0 ]; then
    ct_log "installing host tools: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  grep -qw overlay /proc/filesystems || modprobe overlay
}

# Runs inside the fresh rootfs (chroot) once, at cache build time.
ct_customize_rootfs() {
  set -e
  useradd --create-home --uid 1000 --shell /bin/bash tester
  echo asset-catalog-e2e >/etc/hostname
  # An empty machine-id: nspawn hands every boot a fresh one.
  : >/etc/machine-id
  # Persistent journal, so that `journalctl --user` works for the test user.
  mkdir -p /var/log/journal
  # Nothing may take the dpkg lock or wake up behind the test's back.
  for unit in apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer \
    e2scrub_all.timer fstrim.timer systemd-tmpfiles-clean.timer; do
    ln -sf /dev/null "/etc/systemd/system/$unit"
  done
  printf 'APT::Install-Recommends "false";\n' >/etc/apt/apt.conf.d/90no-recommends
  apt-get clean
  rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/*.log /var/log/apt/*
}

# Prints the path of the unpacked, cached rootfs, building it if needed.
ct_rootfs() {
  local cache=$1 mirror key tarball dir tmp
  mirror=$(ct_mirror)
  key=$( { echo "$CT_SUITE $mirror $(dpkg --print-architecture) $CT_INCLUDE"; declare -f ct_customize_rootfs; } |
    sha256sum | cut -c1-16)
  tarball="$cache/e2e-rootfs-$CT_SUITE-$key.tar.zst"
  dir="$cache/e2e-rootfs-$CT_SUITE-$key"
  mkdir -p "$cache"
  exec 8>"$cache/e2e-rootfs.lock"
  flock 8
  if [ ! -f "$tarball" ]; then
    ct_log "building the cached rootfs ($CT_SUITE from $mirror; ~1 min, once)"
    tmp=$(mktemp -d "$cache/e2e-rootfs-build.XXXXXX")
    if ! debootstrap --variant=minbase --include="$CT_INCLUDE" "$CT_SUITE" "$tmp/root" "$mirror" \
      >"$tmp/debootstrap.log" 2>&1; then
      tail -n 20 "$tmp/debootstrap.log" >&2
      rm -rf "$tmp"
      return 1
    fi
    chroot "$tmp/root" /usr/bin/env -i PATH="$CT_PATH" bash -c "$(declare -f ct_customize_rootfs); ct_customize_rootfs"
    tar --numeric-owner --xattrs --acls -C "$tmp/root" -I 'zstd -T0 -q' -cf "$tmp/rootfs.tar.zst" .
    mv "$tmp/rootfs.tar.zst" "$tarball"
    rm -rf "$tmp"
    # Older cache generations are of no further use.
    find "$cache" -maxdepth 1 -name "e2e-rootfs-$CT_SUITE-*" ! -name "*$key*" -exec rm -rf {} +
  fi
  if [ ! -f "$dir/.complete" ]; then
    rm -rf "$dir"
    mkdir -p "$dir"
    tar --numeric-owner --xattrs --acls -C "$dir" -I zstd -xf "$tarball"
    touch "$dir/.complete"
  fi
  flock -u 8
  exec 8>&-
  echo "$dir"
}

# ct_remove_cgroup CG: kill whatever is left in the cgroup tree CG, then
# remove the tree bottom-up (retrying, bounded, while the killed processes are
# being reaped). Fails if CG is still there afterwards.
ct_remove_cgroup() {
  local cg=$1 i
  find "$cg" -name cgroup.procs -exec cat -- {} + 2>/dev/null |
    while read -r pid; do kill -KILL "$pid" 2>/dev/null || true; done
  for ((i = 0; i < 50; i++)); do
    find "$cg" -depth -type d -exec rmdir {} \; 2>/dev/null || true
    [ -d "$cg" ] || return 0
    sleep 0.1
  done
  [ ! -d "$cg" ]
}

# Tidy up after earlier runs that were killed before their cleanup could run
# (SIGKILL, a lost session): their container (everything in the cgroups named
# after the dead run) is stopped, their overlay unmounted, their run directory
# and cgroups removed.
ct_reap_stale() {
  local d owner cg
  for d in /var/tmp/asset-catalog-e2e.*; do
    [ -f "$d/owner.pid" ] || continue
    owner=$(cat "$d/owner.pid")
    kill -0 "$owner" 2>/dev/null && continue
    for cg in /sys/fs/cgroup/systemd/ac-e2e-"$owner" /sys/fs/cgroup/unified/ac-e2e-"$owner" /sys/fs/cgroup/ac-e2e-"$owner"; do
      [ -d "$cg" ] || continue
      ct_remove_cgroup "$cg" || ct_log "could not remove cgroup $cg"
    done
    if mountpoint -q "$d/root"; then umount "$d/root" 2>/dev/null || umount -l "$d/root" || continue; fi
    ct_log "removed the leftovers of an interrupted run: $d"
    rm -rf "$d"
  done
}

# ct_boot LOWER NAME [nspawn options...]: overlay over LOWER, boot it, wait for
# systemd to finish starting up (bounded).
ct_boot() {
  local lower=$1 name=$2 cg i state
  shift 2
  CT_RUN_DIR=$(mktemp -d /var/tmp/asset-catalog-e2e.XXXXXX)
  mkdir -p "$CT_RUN_DIR"/{upper,work,root}
  echo "$$" >"$CT_RUN_DIR/owner.pid"
  mount -t overlay overlay -o "lowerdir=$lower,upperdir=$CT_RUN_DIR/upper,workdir=$CT_RUN_DIR/work" "$CT_RUN_DIR/root"
  CT_MOUNTED=1
  CT_ROOT=$CT_RUN_DIR/root

  # A cgroup of our own in each hierarchy nspawn looks at.
  for cg in /sys/fs/cgroup/systemd /sys/fs/cgroup/unified /sys/fs/cgroup; do
    if [ -f "$cg/cgroup.procs" ] && [ ! -L "$cg" ]; then
      mkdir "$cg/$name"
      CT_CGROUPS+=("$cg/$name")
      [ "$cg" = /sys/fs/cgroup ] && break # pure cgroup v2 host: one hierarchy
    fi
  done

  (
    for cg in "${CT_CGROUPS[@]}"; do echo "$BASHPID" >"$cg/cgroup.procs"; done
    exec systemd-nspawn --quiet --register=no --keep-unit --boot --console=passive \
      --link-journal=no --machine="$name" --directory="$CT_ROOT" "$@"
  ) >"$CT_RUN_DIR/console.log" 2>&1 </dev/null &
  CT_NSPAWN_PID=$!

  for ((i = 0; i < 300; i++)); do
    CT_PID1=$( (ps -o pid=,comm= --ppid "$CT_NSPAWN_PID" 2>/dev/null || true) | awk '$2 == "systemd" { print $1; exit }')
    [ -n "$CT_PID1" ] && break
    kill -0 "$CT_NSPAWN_PID" 2>/dev/null || { tail -n 30 "$CT_RUN_DIR/console.log" >&2; return 1; }
    sleep 0.1
  done
  [ -n "$CT_PID1" ] || { ct_log "no systemd in the container after 30 s"; return 1; }

  for ((i = 0; i < 600; i++)); do
    state=$(ct_exec systemctl is-system-running 2>/dev/null || true)
    case "$state" in
      running | degraded) break ;;
    esac
    sleep 0.1
  done
  case "$state" in
    running) ;;
    degraded) ct_log "system is degraded: $(ct_exec systemctl --failed --no-legend --plain | tr '\n' ' ')" ;;
    *)
      ct_log "container did not finish booting in 60 s (state: ${state:-none})"
      return 1
      ;;
  esac
}

# Run a command in the container as root, with a clean environment.
ct_exec() {
  nsenter --target "$CT_PID1" --all -- /usr/bin/env -i PATH="$CT_PATH" HOME=/root LANG=C.UTF-8 \
    TERM=dumb SYSTEMD_PAGER= SYSTEMD_COLORS=0 DEBIAN_FRONTEND=noninteractive "$@"
}

# Run a shell snippet in the container as root (cwd /root).
ct_sh() { ct_exec bash -euo pipefail -c "cd /root; $1"; }

# Run a shell snippet in the container as the test user, in their user
# manager's environment (cwd: their home).
ct_user_sh() {
  ct_exec runuser -u "$CT_TEST_USER" -- /usr/bin/env -i PATH="$CT_PATH" HOME="/home/$CT_TEST_USER" \
    USER="$CT_TEST_USER" LOGNAME="$CT_TEST_USER" LANG=C.UTF-8 TERM=dumb SYSTEMD_PAGER= SYSTEMD_COLORS=0 \
    XDG_RUNTIME_DIR="/run/user/$CT_TEST_UID" DBUS_SESSION_BUS_ADDRESS="unix:path=/run/user/$CT_TEST_UID/bus" \
    bash -euo pipefail -c "cd; $1"
}

# Power the container off (bounded), then undo every mount and cgroup.
ct_cleanup() {
  local i cg
  if [ -n "$CT_NSPAWN_PID" ] && kill -0 "$CT_NSPAWN_PID" 2>/dev/null; then
    kill -TERM "$CT_NSPAWN_PID" 2>/dev/null || true
    for ((i = 0; i < 150; i++)); do
      kill -0 "$CT_NSPAWN_PID" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$CT_NSPAWN_PID" 2>/dev/null; then
      ct_log "container did not power off in 15 s: killing it"
      if [ -n "$CT_PID1" ]; then kill -KILL "$CT_PID1" 2>/dev/null || true; fi
      for ((i = 0; i < 50; i++)); do
        kill -0 "$CT_NSPAWN_PID" 2>/dev/null || break
        sleep 0.1
      done
      kill -KILL "$CT_NSPAWN_PID" 2>/dev/null || true
    fi
    wait "$CT_NSPAWN_PID" 2>/dev/null || true
  fi
  CT_NSPAWN_PID=""
  for cg in "${CT_CGROUPS[@]}"; do
    ct_remove_cgroup "$cg" || ct_log "could not remove cgroup $cg"
  done
  CT_CGROUPS=()
  if [ "$CT_MOUNTED" = 1 ]; then
    umount "$CT_ROOT" 2>/dev/null || umount -l "$CT_ROOT" 2>/dev/null || true
    mountpoint -q "$CT_ROOT" || CT_MOUNTED=0
  fi
  if [ "$CT_MOUNTED" = 1 ]; then
    ct_log "could not unmount $CT_ROOT: leaving $CT_RUN_DIR in place"
  elif [ -n "$CT_RUN_DIR" ]; then
    if [ "${CT_KEEP_RUN_DIR:-0}" = 1 ]; then
      ct_log "run directory kept: $CT_RUN_DIR"
    else
      rm -rf "$CT_RUN_DIR"
    fi
  fi
}
