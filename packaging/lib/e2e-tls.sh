# shellcheck shell=bash
# Snippets in single quotes are meant to expand inside the container:
# shellcheck disable=SC2016
# The TLS step of packaging/e2e-systemd.sh: TLS switched on exactly as
# /etc/asset-catalog/server.toml and the README say, under the packaged unit,
# with the key readable by root alone; curl and the user's watcher over
# https; a renewed certificate taken up by `systemctl reload` (same process).
# Uses the helpers of e2e-systemd.sh and e2e-steps.sh.

TLS_DIR=/etc/asset-catalog/tls
# The test CA (made in the container with openssl), trusted by curl and the watcher.
E2E_CA=/root/e2e-ca

# issue_cert SERIAL DAYS: a fresh key and a certificate for 127.0.0.1 and
# localhost signed by the test CA, as $E2E_CA/SERIAL.key and $E2E_CA/SERIAL.pem.
issue_cert() {
  ct_sh "cd $E2E_CA
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
      -keyout $1.key -out $1.csr -subj /CN=127.0.0.1
    printf '%s\n' basicConstraints=critical,CA:FALSE keyUsage=critical,digitalSignature \
      extendedKeyUsage=serverAuth subjectAltName=IP:127.0.0.1,DNS:localhost > leaf.ext
    openssl x509 -req -in $1.csr -CA ca.pem -CAkey ca.key -set_serial $1 -days $2 \
      -extfile leaf.ext -out $1.pem
    openssl x509 -noout -serial -enddate -in $1.pem"
}

# install_cert SERIAL: put that certificate and key where server.toml says,
# the key root-owned, mode 0600 (what the comments in server.toml ask for).
install_cert() {
  ct_sh "install -D -m 644 $E2E_CA/$1.pem $TLS_DIR/cert.pem
    install -D -m 600 $E2E_CA/$1.key $TLS_DIR/key.pem
    ls -l $TLS_DIR
    [ \"\$(stat -c '%a %U' $TLS_DIR/key.pem)\" = '600 root' ]"
}

# The serial of the certificate the server presents now (openssl's hex form).
served_serial() {
  ct_sh 'openssl s_client -connect 127.0.0.1:8000 -CAfile /root/e2e-ca/ca.pem -verify_return_error </dev/null 2>/dev/null |
    openssl x509 -noout -serial'
}

# serial_is HEX: the server presents the certificate with that serial.
serial_is() {
  local served
  served=$(served_serial) || return 1
  echo "served: $served"
  [ "$served" = "serial=$1" ]
}

step_tls() {
  step "5. TLS as packaged: certificate and root-only key in $TLS_DIR, https, reload a renewed certificate"
  tls_on_and_reload
  # Back to plain http on loopback for the steps that follow.
  run "server.toml and the watcher's config back to plain http on loopback" ct_sh "
    cp /root/server.toml.before-tls /etc/asset-catalog/server.toml
    systemctl restart asset-catalog-server
    runuser -u $CT_TEST_USER -- cp /home/$CT_TEST_USER/.config/asset-watcher/config.toml.before-tls \
      /home/$CT_TEST_USER/.config/asset-watcher/config.toml"
  eventually 30 "server ready again on $SERVER" server_ready
  run "the watcher restarted on http" ct_user_sh \
    'systemctl --user restart asset-watcher && systemctl --user is-active asset-watcher'
  # The file uploaded over https is one more asset.
  ASSETS_BEFORE=$((ASSETS_BEFORE + 1))
}

tls_on_and_reload() {
  # Here the helpers (server_ready, catalog_has) speak https and trust the test CA.
  local SERVER=https://127.0.0.1:8000
  local CACERT="--cacert $E2E_CA/ca.pem"
  local AUTH="$AUTH $CACERT"
  local pid h_tls
  run "a test CA and a server certificate for 127.0.0.1 (openssl in the container)" ct_sh "
    install -d -m 700 $E2E_CA && cd $E2E_CA
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem \
      -days 30 -subj '/CN=asset-catalog e2e CA' \
      -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign"
  run "certificate 0x1001 issued (valid 20 days)" issue_cert 0x1001 20
  run "cert.pem and key.pem (chmod 600, root-owned) into $TLS_DIR" install_cert 0x1001
  run "server.toml: the TLS lines uncommented, listen on all addresses (as its comments say)" ct_sh "
    cp /etc/asset-catalog/server.toml /root/server.toml.before-tls
    sed -i -e 's|^#tls_cert_file = |tls_cert_file = |' -e 's|^#tls_key_file = |tls_key_file = |' \
      -e 's|^listen = \"127.0.0.1:8000\"|listen = \"0.0.0.0:8000\"|' /etc/asset-catalog/server.toml
    grep -E '^(listen|tls_)' /etc/asset-catalog/server.toml
    [ \"\$(grep -cE '^(listen = \"0.0.0.0:8000\"|tls_cert_file = \"$TLS_DIR/cert.pem\"|tls_key_file = \"$TLS_DIR/key.pem\")\$' /etc/asset-catalog/server.toml)\" = 3 ]
    asset-catalog-server check-config"
  run "systemctl restart asset-catalog-server" ct_sh \
    'systemctl restart asset-catalog-server && systemctl is-active asset-catalog-server'
  eventually 30 "curl --cacert ca.pem $SERVER/readyz" server_ready
  run "plain http is not served on the TLS port" ct_sh \
    '! curl -fsS --max-time 5 http://127.0.0.1:8000/healthz'
  run "the key stays root-only on disk; the service reads its private credential copy" ct_sh "
    [ \"\$(stat -c '%a %U' $TLS_DIR/key.pem)\" = '600 root' ]
    uid=\$(stat -c %u /proc/\$(systemctl show -p MainPID --value asset-catalog-server))
    ls -ln /run/credentials/asset-catalog-server.service
    [ \"\$(stat -c '%a %u' /run/credentials/asset-catalog-server.service/tls_key.pem)\" = \"400 \$uid\" ]
    journalctl --no-pager -u asset-catalog-server _EXE=/usr/bin/asset-catalog-server |
      grep 'TLS certificate' | tail -n 1 | grep 'key /etc/asset-catalog/tls/key.pem (as systemd credential tls_key.pem)'"
  eventually 5 "openssl s_client verifies the served certificate 0x1001 against the CA" serial_is 1001

  run "the admin hands the CA to $CT_TEST_USER" ct_sh \
    "install -o $CT_TEST_USER -m 644 $E2E_CA/ca.pem /home/$CT_TEST_USER/.config/asset-watcher/ca.pem"
  run "$CT_TEST_USER points the watcher at $SERVER with ca_file and restarts it" ct_user_sh "
    cp ~/.config/asset-watcher/config.toml ~/.config/asset-watcher/config.toml.before-tls
    sed -i 's|^server = .*|server = \"$SERVER\"\\nca_file = \"/home/$CT_TEST_USER/.config/asset-watcher/ca.pem\"|' \
      ~/.config/asset-watcher/config.toml
    grep -E '^(server|ca_file)' ~/.config/asset-watcher/config.toml
    asset-watcher check-config
    systemctl --user restart asset-watcher && systemctl --user is-active asset-watcher"
  h_tls=$(drop_file tls/over-https.bin 3000000)
  eventually 60 "a file dropped now reaches the catalog through https" catalog_has "$h_tls"

  pid=$(main_pid)
  run "certificate 0x1002 issued (the renewal: a new key, valid 40 days)" issue_cert 0x1002 40
  run "the renewed cert.pem and key.pem replace the old ones (key chmod 600)" install_cert 0x1002
  run "systemctl reload asset-catalog-server" ct_sh 'systemctl reload asset-catalog-server'
  eventually 10 "the server presents the renewed certificate 0x1002" serial_is 1002
  run "no restart: same MainPID $pid, NRestarts 0, active" ct_sh "
    [ \"\$(systemctl show -p MainPID --value asset-catalog-server)\" = $pid ]
    [ \"\$(systemctl show -p NRestarts --value asset-catalog-server)\" = 0 ]
    systemctl is-active asset-catalog-server"
  run "curl --cacert ca.pem $SERVER/readyz after the reload" server_ready
  eventually 10 "the journal says the certificate was reloaded" ct_sh \
    'journalctl --no-pager -u asset-catalog-server _EXE=/usr/bin/asset-catalog-server | grep "reloaded the TLS certificate"'
  run "the key in $TLS_DIR is still root-only (600 root)" ct_sh \
    "[ \"\$(stat -c '%a %U' $TLS_DIR/key.pem)\" = '600 root' ]"
}
