# shellcheck shell=bash
# Snippets in single quotes are meant to expand inside the container:
# shellcheck disable=SC2016
# The steps of packaging/e2e-systemd.sh, run inside the booted container.
# Everything here is what a person types: apt, systemctl, journalctl, curl,
# asset-watcher. Helpers (run, eventually, pass, fail, ct_sh, ct_user_sh) come
# from e2e-systemd.sh and container.sh.

SERVER=http://127.0.0.1:8000
WATCHED=/home/$CT_TEST_USER/Assets
# The API needs a bearer token: curl reads the header from this root-only
# file, written by make_tokens from `asset-catalog-server token create`.
AUTH='-H @/root/e2e-auth-header'
# curl's CA option for an https $SERVER (set by the TLS step).
CACERT=

# Print the sha256 of every asset in the catalog, one per line.
catalog_hashes() {
  ct_sh "curl -fsS $AUTH '$SERVER/v1/assets?limit=1000' | jq -r '.items[].sha256' | sort"
}

# catalog_has HASH...: every given hash is in the catalog.
catalog_has() {
  local have h
  have=$(catalog_hashes) || return 1
  for h in "$@"; do
    grep -qx "$h" <<<"$have" || { echo "not yet in the catalog: $h"; return 1; }
  done
}

# A metric's value (0 when absent), summed over its label sets.
metric() {
  ct_sh "curl -fsS $AUTH $SERVER/metrics" | awk -v m="$1" '
    index($0, m) == 1 && (substr($0, length(m) + 1, 1) ~ /[ {]/) { sum += $NF }
    END { printf "%d\n", sum }'
}

# Drop a file into the watched directory as the test user, the way programs
# save files: written under a temporary name (ignored: *.tmp), then renamed.
# Prints its sha256.
drop_file() {
  local rel=$1 size=$2
  ct_user_sh "dir=\$(dirname '$WATCHED/$rel'); name=\$(basename '$rel')
    mkdir -p \"\$dir\"
    head -c $size /dev/urandom > \"\$dir/.\$name.tmp\"
    mv \"\$dir/.\$name.tmp\" \"\$dir/\$name\"
    sha256sum \"\$dir/\$name\" | cut -d' ' -f1"
}

server_active() { [ "$(ct_exec systemctl is-active asset-catalog-server)" = active ]; }
server_ready() { ct_sh "curl -fsS $CACERT $SERVER/readyz"; }
watcher_active() { [ "$(ct_user_sh 'systemctl --user is-active asset-watcher')" = active ]; }
main_pid() { ct_exec systemctl show -p MainPID --value asset-catalog-server; }

# The first admin token, made as root the way the README and postinst say,
# while the server runs; the index files must stay the service's (dynamic
# user's) own. Then an upload-only token for the user's watcher.
make_tokens() {
  run "asset-catalog-server token create --name admin --scope admin (as root, server running)" ct_sh '
    token=$(asset-catalog-server token create --name admin --scope admin)
    case "$token" in acat_*) ;; *) echo "not a token: $token"; exit 1 ;; esac
    install -m 600 /dev/null /root/e2e-auth-header
    printf "Authorization: Bearer %s\n" "$token" > /root/e2e-auth-header
    owner=$(stat -c %u /var/lib/private/asset-catalog)
    ls -ln /var/lib/private/asset-catalog
    for f in /var/lib/private/asset-catalog/index.sqlite3*; do
      [ "$(stat -c %u "$f")" = "$owner" ] || { echo "$f is not owned by the service uid $owner"; exit 1; }
    done
    asset-catalog-server token list'
  run "the API answers 401 without a token and 200 with the admin token" ct_sh "
    [ \"\$(curl -s -o /dev/null -w '%{http_code}' $SERVER/v1/assets)\" = 401 ]
    curl -fsS $AUTH $SERVER/v1/assets >/dev/null
    curl -fsS $SERVER/readyz >/dev/null"
  run "an upload-only token for $CT_TEST_USER's watcher in a chmod-600 token file" ct_sh "
    install -d -o $CT_TEST_USER -m 700 /home/$CT_TEST_USER/.config /home/$CT_TEST_USER/.config/asset-watcher
    asset-catalog-server token create --name $CT_TEST_USER-watcher --scope upload > /root/watcher.token
    install -o $CT_TEST_USER -m 600 /root/watcher.token /home/$CT_TEST_USER/.config/asset-watcher/token
    [ \"\$(curl -s -o /dev/null -w '%{http_code}' -H \"Authorization: Bearer \$(cat /root/watcher.token)\" $SERVER/v1/assets)\" = 403 ]"
}

step_install() {
  step "1. apt install ./asset-catalog.deb"
  run "apt install ./asset-catalog.deb" ct_sh 'apt install -y ./asset-catalog.deb'
  run "package installed, /etc/asset-catalog/server.toml is a conffile" ct_sh \
    'dpkg-query -W -f="\${Status}\n\${Conffiles}\n" asset-catalog | tee /dev/stderr | grep -q "^ /etc/asset-catalog/server.toml "'
  run "both binaries, both units, man pages, completions, tmpfiles entry installed" ct_sh '
    for f in /usr/bin/asset-catalog-server /usr/bin/asset-watcher \
      /usr/lib/systemd/system/asset-catalog-server.service /usr/lib/systemd/user/asset-watcher.service \
      /usr/share/man/man1/asset-catalog-server.1.gz /usr/share/man/man1/asset-watcher.1.gz \
      /usr/share/man/man5/asset-catalog-server.toml.5.gz /usr/share/man/man5/asset-watcher.toml.5.gz \
      /usr/share/bash-completion/completions/asset-catalog-server /usr/share/zsh/vendor-completions/_asset-watcher \
      /usr/share/fish/vendor_completions.d/asset-watcher.fish /usr/lib/tmpfiles.d/asset-catalog-server.conf \
      /usr/share/doc/asset-catalog/copyright /usr/share/doc/asset-catalog/changelog.Debian.gz \
      /usr/share/doc/asset-catalog/examples/haproxy.cfg; do
      test -s "$f" || { echo "missing: $f"; exit 1; }
    done
    test "$(stat -c %a /etc/asset-catalog/credentials)" = 700
    test "$(stat -c "%a %U" /etc/asset-catalog/tls)" = "755 root"
    test "$(stat -c "%a %U" /etc/asset-catalog/postgres)" = "700 root"
    test -x /usr/libexec/asset-catalog/refresh-credentials'
  run "asset-catalog-server enabled and running right after install" ct_sh \
    'systemctl is-enabled asset-catalog-server && systemctl is-active asset-catalog-server'
  eventually 30 "server answers /readyz on 127.0.0.1:8000 (embedded file store)" server_ready
  make_tokens
  run "user unit shipped but not enabled for anyone" ct_sh \
    '[ "$(systemctl --global is-enabled asset-watcher.service)" = disabled ]'
}

step_start() {
  step "2. systemctl start asset-catalog-server"
  run "systemctl start asset-catalog-server" ct_sh 'systemctl start asset-catalog-server'
  run "active (Type=notify: READY=1 received)" server_active
  run "GET /readyz and /healthz answer 200" ct_sh "curl -fsS $SERVER/readyz && curl -fsS $SERVER/healthz"
  run "web UI from the package: a ui-link signs in, the grid and its stylesheet load" ct_sh "
    link=\$(asset-catalog-server ui-link) && echo \"\$link\"
    curl -fsS -o /dev/null -c /tmp/ui.jar -H 'Origin: $SERVER' --data-urlencode \"link=\${link##*link=}\" $SERVER/ui/sign-in/link
    curl -fsS -b /tmp/ui.jar $SERVER/ | grep -q 'newest first\\|No assets'
    curl -fsS -o /dev/null $SERVER/ui/static/app.css"
  run "runs as an unprivileged dynamic user with its state directory" ct_sh '
    pid=$(systemctl show -p MainPID --value asset-catalog-server)
    uid=$(stat -c %u /proc/$pid)
    echo "MainPID $pid uid $uid"
    [ "$uid" -ne 0 ]
    [ "$(stat -c %u /var/lib/private/asset-catalog)" = "$uid" ]
    test -L /var/lib/asset-catalog'
  # WatchdogSec=30s in the unit; a drop-in (what `systemctl edit` writes) makes
  # it short enough to see the pings: the server must outlive several periods.
  run "watchdog: with WatchdogSec=2s the server keeps pinging and stays up for 6 s" ct_sh '
    mkdir -p /etc/systemd/system/asset-catalog-server.service.d
    printf "[Service]\nWatchdogSec=2s\n" > /etc/systemd/system/asset-catalog-server.service.d/e2e-watchdog.conf
    systemctl daemon-reload && systemctl restart asset-catalog-server
    pid=$(systemctl show -p MainPID --value asset-catalog-server)
    sleep 6
    systemctl show -p WatchdogTimestampMonotonic -p NRestarts -p MainPID asset-catalog-server
    [ "$(systemctl show -p MainPID --value asset-catalog-server)" = "$pid" ]
    [ "$(systemctl show -p NRestarts --value asset-catalog-server)" = 0 ]
    [ "$(systemctl show -p WatchdogTimestampMonotonic --value asset-catalog-server)" != 0 ]
    rm -r /etc/systemd/system/asset-catalog-server.service.d
    systemctl daemon-reload && systemctl restart asset-catalog-server'
  eventually 30 "server ready again" server_ready
  local security score
  security=$(ct_exec systemd-analyze security --no-pager asset-catalog-server.service 2>&1) ||
    fail "systemd-analyze security"
  echo "$security" >>"$LOG"
  score=$(sed -n 's/.*Overall exposure level for asset-catalog-server.service: \([0-9.]*\).*/\1/p' <<<"$security")
  info "systemd-analyze security: exposure ${score:-?}; still exposed:"
  grep -E '^\s*✗' <<<"$security" | sed 's/^/          /' | cut -c1-110 || true
  if [ -n "$score" ] && awk -v s="$score" 'BEGIN { exit !(s <= 1.5) }'; then
    pass "systemd-analyze security asset-catalog-server: exposure $score <= 1.5"
  else
    fail "systemd-analyze security asset-catalog-server: exposure ${score:-unknown} > 1.5"
  fi
  run "systemd-analyze verify asset-catalog-server.service: clean" ct_sh '
    out=$(systemd-analyze verify /usr/lib/systemd/system/asset-catalog-server.service 2>&1)
    [ -z "$out" ] || { echo "$out"; exit 1; }'
}

step_journal() {
  step "3. journalctl -u asset-catalog-server"
  eventually 10 "journal has the server's own startup lines (listen address, storage)" ct_sh '
    out=$(journalctl --no-pager -u asset-catalog-server _EXE=/usr/bin/asset-catalog-server)
    echo "$out" | tail -n 5
    echo "$out" | grep -q "127.0.0.1:8000" && echo "$out" | grep -qi "file://"'
  eventually 10 "journal has systemd's record of the start" ct_sh \
    'journalctl --no-pager -u asset-catalog-server | grep -q "Started asset-catalog-server.service"'
}

step_watcher() {
  step "4. asset-watcher as a lingering user"
  run "loginctl enable-linger $CT_TEST_USER; user manager running" ct_sh "
    loginctl enable-linger $CT_TEST_USER
    systemctl start user@$CT_TEST_UID.service
    systemctl is-active user@$CT_TEST_UID.service"
  run "systemd-analyze --user verify asset-watcher.service: clean" ct_user_sh '
    out=$(systemd-analyze --user verify /usr/lib/systemd/user/asset-watcher.service 2>&1)
    [ -z "$out" ] || { echo "$out"; exit 1; }'
  run "asset-watcher init --server $SERVER --watch ~/Assets --token-file ~/.config/asset-watcher/token" ct_user_sh "
    mkdir -p ~/Assets
    asset-watcher init --server $SERVER --watch ~/Assets --token-file ~/.config/asset-watcher/token
    test -s ~/.config/asset-watcher/config.toml
    asset-watcher check-config"
  run "systemctl --user enable --now asset-watcher" ct_user_sh 'systemctl --user enable --now asset-watcher'
  run "asset-watcher active (Type=notify)" watcher_active
  run "watchdog: with WatchdogSec=2s the watcher keeps pinging and stays up for 6 s" ct_user_sh '
    mkdir -p ~/.config/systemd/user/asset-watcher.service.d
    printf "[Service]\nWatchdogSec=2s\n" > ~/.config/systemd/user/asset-watcher.service.d/e2e-watchdog.conf
    systemctl --user daemon-reload && systemctl --user restart asset-watcher
    pid=$(systemctl --user show -p MainPID --value asset-watcher)
    sleep 6
    systemctl --user show -p WatchdogTimestampMonotonic -p NRestarts -p MainPID asset-watcher
    [ "$(systemctl --user show -p MainPID --value asset-watcher)" = "$pid" ]
    [ "$(systemctl --user show -p NRestarts --value asset-watcher)" = 0 ]
    [ "$(systemctl --user show -p WatchdogTimestampMonotonic --value asset-watcher)" != 0 ]
    rm -r ~/.config/systemd/user/asset-watcher.service.d
    systemctl --user daemon-reload && systemctl --user restart asset-watcher
    systemctl --user is-active asset-watcher'

  H_TEXT=$(ct_user_sh "printf 'hello from the e2e test\n' > ~/Assets/notes.txt; sha256sum ~/Assets/notes.txt | cut -d' ' -f1")
  H_PHOTO=$(drop_file photo.jpg 300000)
  H_BIG=$(drop_file video.mp4 20000000)
  H_NESTED=$(drop_file 2026/trip/clip.mov 2000000)
  H_PART=$(ct_user_sh "head -c 1000 /dev/urandom > ~/Assets/download.part; sha256sum ~/Assets/download.part | cut -d' ' -f1")
  H_DUP=$(ct_user_sh "cp ~/Assets/photo.jpg ~/Assets/photo-copy.jpg; sha256sum ~/Assets/photo-copy.jpg | cut -d' ' -f1")
  info "dropped: notes.txt photo.jpg video.mp4 (20 MB) 2026/trip/clip.mov photo-copy.jpg (duplicate) download.part (ignored)"
  eventually 60 "all dropped files reach the server's catalog" catalog_has "$H_TEXT" "$H_PHOTO" "$H_BIG" "$H_NESTED" "$H_DUP"
  run "temporary file (*.part) not uploaded; duplicate stored once" ct_sh "
    hashes=\$(curl -fsS $AUTH '$SERVER/v1/assets?limit=1000' | jq -r '.items[].sha256')
    ! grep -qx $H_PART <<<\"\$hashes\"
    [ \"\$(grep -cx $H_PHOTO <<<\"\$hashes\")\" = 1 ]"
  run "downloaded content matches (GET /v1/assets/{sha256}/content)" ct_sh "
    [ \"\$(curl -fsS $AUTH $SERVER/v1/assets/$H_BIG/content | sha256sum | cut -d' ' -f1)\" = $H_BIG ]"
  # The watcher logs each upload as a structured entry (the file's path and
  # hash are journal fields, shown by -o verbose / -o json).
  eventually 10 "journalctl --user -u asset-watcher shows the uploads" ct_user_sh "
    out=\$(journalctl --user --no-pager -o verbose -u asset-watcher)
    for h in $H_TEXT $H_PHOTO $H_BIG $H_NESTED; do
      echo \"\$out\" | grep -q \"=\$h\" || { echo \"no journal entry for \$h\"; exit 1; }
    done
    for f in notes.txt photo.jpg video.mp4 2026/trip/clip.mov; do
      echo \"\$out\" | grep -q \"=$WATCHED/\$f\\\$\" || { echo \"no journal entry for \$f\"; exit 1; }
    done
    journalctl --user --no-pager -u asset-watcher -o json | jq -r 'select(.F_FILE_PATH) | [.MESSAGE, .F_FILE_PATH, .F_ASSET_SHA256] | @tsv'"
  ct_user_sh "journalctl --user --no-pager -u asset-watcher -o json |
    jq -r 'select(.F_FILE_PATH) | \"\\(.MESSAGE) \\(.F_FILE_PATH) \\(.F_ASSET_SHA256[0:12])…\"'" |
    sed 's/^/          journal: /'
  ASSETS_BEFORE=$(catalog_hashes | wc -l)
  local uploads
  uploads=$(metric asset_catalog_uploads_total)
  if [ "$uploads" -ge 4 ]; then
    pass "server counted the uploads (asset_catalog_uploads_total = $uploads)"
  else
    fail "asset_catalog_uploads_total is $uploads in /metrics, expected >= 4"
  fi
}

step_restart_upgrade_purge() {
  step "6. restarts, reinstall/upgrade with a modified conffile, remove, purge"
  local pid_before count
  run "systemctl restart asset-catalog-server" ct_sh 'systemctl restart asset-catalog-server && systemctl is-active asset-catalog-server'
  eventually 30 "server ready again" server_ready
  run "systemctl --user restart asset-watcher" ct_user_sh 'systemctl --user restart asset-watcher && systemctl --user is-active asset-watcher'
  # The restarted server's counters start at zero: any upload would show.
  sleep 3
  count=$(metric asset_catalog_uploads_total)
  if [ "$count" = 0 ]; then
    pass "nothing re-uploaded after both restarts (uploads since restart: 0)"
  else
    fail "the watcher re-uploaded $count file(s) after the restarts"
  fi
  run "catalog unchanged ($ASSETS_BEFORE assets)" test "$(catalog_hashes | wc -l)" = "$ASSETS_BEFORE"

  run "admin edits the conffile (log level, a comment)" ct_sh '
    sed -i "s/^level = \"info\"/level = \"debug\"/" /etc/asset-catalog/server.toml
    echo "# e2e: local change that upgrades must keep" >> /etc/asset-catalog/server.toml
    systemctl restart asset-catalog-server'
  pid_before=$(main_pid)
  run "apt install --reinstall ./asset-catalog.deb (same version)" ct_sh 'apt install -y --reinstall ./asset-catalog.deb'
  run "modified conffile kept, no .dpkg-new/.dpkg-dist left" ct_sh '
    grep -q "^# e2e: local change" /etc/asset-catalog/server.toml
    grep -q "^level = \"debug\"" /etc/asset-catalog/server.toml
    ! ls /etc/asset-catalog/*.dpkg-* 2>/dev/null'
  run "server restarted by the package and active" ct_sh \
    "systemctl is-active asset-catalog-server && [ \"\$(systemctl show -p MainPID --value asset-catalog-server)\" != '$pid_before' ]"
  eventually 30 "server ready after reinstall" server_ready
  run "all data kept ($ASSETS_BEFORE assets)" test "$(catalog_hashes | wc -l)" = "$ASSETS_BEFORE"

  # A real upgrade: the same package re-versioned (0.1.0-1 -> <version>+e2e1).
  local version next
  # shellcheck disable=SC2154 # $deb is set by e2e-systemd.sh
  version=$(dpkg-deb -f "$deb" Version)
  next="$version+e2e1"
  (
    set -e
    rm -rf "$CT_RUN_DIR/next"
    dpkg-deb -R "$deb" "$CT_RUN_DIR/next"
    sed -i "s/^Version: .*/Version: $next/" "$CT_RUN_DIR/next/DEBIAN/control"
    dpkg-deb --root-owner-group -Zgzip -b "$CT_RUN_DIR/next" "$CT_ROOT/root/asset-catalog-next.deb"
  ) >>"$LOG" 2>&1 || fail "repacking the package as version $next"
  run "apt install ./asset-catalog-next.deb (upgrade $version -> $next)" ct_sh \
    "apt install -y ./asset-catalog-next.deb && dpkg-query -W -f='\${Version}' asset-catalog | grep -qx '$next'"
  run "after the upgrade: conffile kept, server active" ct_sh '
    grep -q "^# e2e: local change" /etc/asset-catalog/server.toml
    systemctl is-active asset-catalog-server'
  eventually 30 "server ready after upgrade with all data ($ASSETS_BEFORE assets)" \
    test "$(catalog_hashes 2>/dev/null | wc -l)" = "$ASSETS_BEFORE"
  run "watcher still active through the upgrade" watcher_active

  run "the user stops their watcher (systemctl --user disable --now asset-watcher)" ct_user_sh \
    'systemctl --user disable --now asset-watcher'
  run "apt remove asset-catalog" ct_sh 'apt remove -y asset-catalog'
  run "removed: server stopped, binaries gone; conffile and data kept" ct_sh '
    ! systemctl is-active asset-catalog-server
    ! pgrep -x asset-catalog-s
    ! test -e /usr/bin/asset-catalog-server
    test -f /etc/asset-catalog/server.toml
    test -f /var/lib/private/asset-catalog/index.sqlite3'
  run "apt purge asset-catalog" ct_sh 'apt purge -y asset-catalog'
  run "purged: config, credentials dir, state, unit state gone; users' files kept" ct_sh "
    ! test -e /etc/asset-catalog
    ! test -e /var/lib/asset-catalog
    ! test -e /var/lib/private/asset-catalog
    ! test -e /usr/lib/systemd/system/asset-catalog-server.service
    ! test -e /etc/systemd/system/multi-user.target.wants/asset-catalog-server.service
    ! dpkg-query -W -f='\${Status}' asset-catalog 2>/dev/null | grep -q installed
    test -f /home/$CT_TEST_USER/.config/asset-watcher/config.toml
    test -f $WATCHED/notes.txt"
}

step_s3() {
  step "7. the server on S3 (Garage inside the container), via the conffile + a credential"
  local key=GKe2e0asset0catalog secret bucket=assets
  secret=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
  run "Garage running (systemd-run, single node, bucket '$bucket')" ct_sh "
    mkdir -p /var/lib/garage-e2e
    cat > /etc/garage-e2e.toml <<EOF
metadata_dir = \"/var/lib/garage-e2e/meta\"
data_dir = \"/var/lib/garage-e2e/data\"
db_engine = \"lmdb\"
replication_factor = 1
rpc_bind_addr = \"127.0.0.1:3901\"
rpc_secret = \"$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')\"
[s3_api]
api_bind_addr = \"127.0.0.1:3900\"
s3_region = \"garage\"
[admin]
api_bind_addr = \"127.0.0.1:3903\"
EOF
    systemd-run --unit=garage-e2e --quiet \
      -E GARAGE_DEFAULT_ACCESS_KEY=$key -E GARAGE_DEFAULT_SECRET_KEY=$secret -E GARAGE_DEFAULT_BUCKET=$bucket \
      /usr/local/bin/garage -c /etc/garage-e2e.toml server --single-node --default-bucket"
  eventually 30 "Garage answers /health" ct_sh 'curl -fsS http://127.0.0.1:3903/health'

  run "apt install ./asset-catalog.deb (fresh install)" ct_sh 'apt install -y ./asset-catalog.deb'
  eventually 30 "server ready on the embedded store" server_ready
  # The purge removed the index and with it every token: new ones, as on any fresh install.
  make_tokens
  run "admin switches [storage] to S3 in the conffile and stores the secret as a credential" ct_sh "
    sed -i 's|^url = \"file:///var/lib/asset-catalog/objects\"|url = \"s3://$bucket\"\\nendpoint = \"http://127.0.0.1:3900\"\\nregion = \"garage\"\\npath_style = true\\nallow_http = true\\naccess_key_id = \"$key\"\\nsecret_access_key_credential = \"s3_secret-access-key\"|' /etc/asset-catalog/server.toml
    grep -A7 '^\\[storage\\]' /etc/asset-catalog/server.toml
    install -m 0600 /dev/null /etc/asset-catalog/credentials/secret-access-key
    printf '%s' '$secret' > /etc/asset-catalog/credentials/secret-access-key
    systemctl restart asset-catalog-server
    systemctl is-active asset-catalog-server"
  eventually 30 "server ready on S3 (/readyz checks the bucket)" server_ready
  eventually 10 "journal shows the S3 storage" ct_sh \
    "journalctl --no-pager -u asset-catalog-server _EXE=/usr/bin/asset-catalog-server | grep -q 's3://$bucket'"

  run "the user's watcher started again" ct_user_sh 'systemctl --user enable --now asset-watcher && systemctl --user is-active asset-watcher'
  local h_small h_big
  h_small=$(drop_file s3/readme.txt 5000)
  h_big=$(drop_file s3/raw.bin 24000000)
  info "dropped: s3/readme.txt, s3/raw.bin (24 MB: multipart with 16 MiB parts)"
  eventually 90 "both files reach the catalog" catalog_has "$h_small" "$h_big"
  run "the bytes are in the bucket, not in the embedded store" ct_sh "
    listing=\$(curl -fsS -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' --aws-sigv4 'aws:amz:garage:s3' --user '$key:$secret' 'http://127.0.0.1:3900/$bucket?list-type=2')
    grep -q '<Key>$h_small' <<<\"\$listing\"
    grep -q '<Key>$h_big' <<<\"\$listing\"
    [ -z \"\$(find /var/lib/private/asset-catalog -path '*objects*' -type f 2>/dev/null)\" ]"
  run "downloaded content from S3 matches" ct_sh "
    [ \"\$(curl -fsS $AUTH $SERVER/v1/assets/$h_big/content | sha256sum | cut -d' ' -f1)\" = $h_big ]"
  run "the user stops their watcher" ct_user_sh 'systemctl --user disable --now asset-watcher'
  run "apt purge asset-catalog (the bucket's objects are not the package's: kept)" ct_sh "
    apt purge -y asset-catalog
    ! test -e /etc/asset-catalog
    ! test -e /var/lib/private/asset-catalog
    curl -fsS -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' --aws-sigv4 'aws:amz:garage:s3' --user '$key:$secret' 'http://127.0.0.1:3900/$bucket?list-type=2' | grep -q '<Key>$h_big'"
}
