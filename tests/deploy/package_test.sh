#!/usr/bin/env bash
# shellcheck disable=SC2015  # "check && pass || fail" is meant: pass always succeeds.
# DeployPackage.*: the install rules and the .deb.
#   deb         cpack -G DEB in the build tree; dpkg -c shows the expected files, dpkg-deb -I the conffile, the
#               maintainer scripts and library dependencies; the packaged files are the repository's.
#   install     DESTDIR=... cmake --install under /usr/local: the unit points at /usr/local paths, and a
#               second install keeps an administrator's edited config.
#   scripts     the maintainer scripts with stub commands: postinst creates the user and group only when
#               missing, fixes the config's owner and mode, and never enables or starts the service.
# cpack and cmake --install install what the build tree has built; in CI the whole tree is built first.
# Usage: package_test.sh deb|install|scripts SOURCE_DIR BUILD_DIR
set -euo pipefail
mode=$1
src=$(realpath "$2")
build=$(realpath "$3")

failures=0
passes=0
pass() { echo "ok   $*"; passes=$((passes + 1)); }
fail() { echo "FAIL $*"; failures=$((failures + 1)); }
finish() {
  echo "$passes passed, $failures failed"
  [ "$failures" -eq 0 ]
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

test_deb() {
  for tool in cpack dpkg-deb dpkg-shlibdeps; do
    command -v "$tool" >/dev/null || { fail "$tool not installed (scripts/deps.sh installs dpkg-dev)"; finish; return; }
  done
  # -B keeps cpack's staging and output out of the build tree, so parallel runs don't collide.
  if ! (cd "$build" && cpack -G DEB -B "$tmp/out" >"$tmp/cpack.log" 2>&1); then
    cat "$tmp/cpack.log"
    fail "cpack -G DEB"
    finish
    return
  fi
  local debs=("$tmp"/out/*.deb)
  if [ "${#debs[@]}" -ne 1 ] || [ ! -f "${debs[0]}" ]; then
    fail "expected one .deb, got: ${debs[*]}"
    finish
    return
  fi
  local deb=${debs[0]}
  pass "cpack built $(basename "$deb") ($(stat -c %s "$deb") bytes)"

  # Files and modes.
  dpkg -c "$deb" >"$tmp/contents"
  local want=(
    "-rwxr-xr-x ./usr/bin/pooler"
    "-rw-r--r-- ./lib/systemd/system/pooler.service"
    "-rw-r--r-- ./etc/pooler/pooler.toml"
    "-rw-r--r-- ./usr/share/doc/pooler/pooler.toml.example"
    "-rw-r--r-- ./usr/share/doc/pooler/README.md"
  )
  local entry
  for entry in "${want[@]}"; do
    if awk -v m="${entry%% *}" -v p="${entry#* }" '$1 == m && $6 == p { found = 1 } END { exit !found }' "$tmp/contents"; then
      pass "dpkg -c: $entry"
    else
      fail "dpkg -c: no $entry"
    fi
  done
  if grep -Eq ' \./usr/local/| \./usr/etc/' "$tmp/contents"; then
    fail "dpkg -c: files under /usr/local or /usr/etc: $(grep -E ' \./usr/(local|etc)/' "$tmp/contents" | head -3)"
  else
    pass "dpkg -c: nothing under /usr/local or /usr/etc"
  fi

  # Control information.
  dpkg-deb -I "$deb" >"$tmp/info"
  local field
  for field in "Package: pooler" "Architecture: $(dpkg --print-architecture)"; do
    if grep -qx " $field" "$tmp/info"; then pass "dpkg-deb -I: $field"; else fail "dpkg-deb -I: no '$field'"; fi
  done
  local depends
  depends=$(sed -n 's/^ Depends: //p' "$tmp/info")
  if grep -q 'adduser' <<<"$depends" && grep -q 'libuv1' <<<"$depends" && grep -q 'libpq5' <<<"$depends"; then
    pass "Depends (dpkg-shlibdeps + adduser): $depends"
  else
    fail "Depends lacks adduser/libuv1/libpq5: $depends"
  fi
  local conffiles
  conffiles=$(dpkg-deb -I "$deb" conffiles)
  if [ "$conffiles" = "/etc/pooler/pooler.toml" ]; then pass "conffiles: $conffiles"; else fail "conffiles: '$conffiles'"; fi
  for script in postinst prerm postrm; do
    if grep -Eq "^ +[0-9]+ bytes, +[0-9]+ lines +\* +$script " "$tmp/info"; then
      pass "dpkg-deb -I: executable $script"
    else
      fail "dpkg-deb -I: no executable $script"
    fi
  done
  if dpkg-deb -I "$deb" postinst | grep -q 'adduser --system'; then pass "postinst creates the system user"; else fail "postinst: no adduser --system"; fi

  # The packaged files are the repository's, and the packaged (stripped) binary runs.
  dpkg-deb -x "$deb" "$tmp/root"
  cmp -s "$tmp/root/lib/systemd/system/pooler.service" "$src/deploy/pooler.service" &&
    pass "packaged unit = deploy/pooler.service" || fail "packaged unit differs from deploy/pooler.service"
  cmp -s "$tmp/root/etc/pooler/pooler.toml" "$src/deploy/pooler.toml" &&
    pass "packaged config = deploy/pooler.toml" || fail "packaged config differs from deploy/pooler.toml"
  local out
  if out=$("$tmp/root/usr/bin/pooler" --version 2>&1); then pass "packaged binary: $out"; else fail "packaged binary --version: $out"; fi
  if out=$("$tmp/root/usr/bin/pooler" --check-config "$tmp/root/etc/pooler/pooler.toml" 2>&1); then
    pass "packaged binary accepts the packaged config"
  else
    fail "packaged config: $out"
  fi
  finish
}

test_install() {
  local dest=$tmp/dest prefix=/usr/local
  if ! DESTDIR=$dest cmake --install "$build" --prefix "$prefix" >"$tmp/install.log" 2>&1; then
    cat "$tmp/install.log"
    fail "cmake --install --prefix $prefix"
    finish
    return
  fi
  pass "DESTDIR=… cmake --install --prefix $prefix"
  local f
  for f in bin/pooler lib/systemd/system/pooler.service etc/pooler/pooler.toml share/doc/pooler/pooler.toml.example; do
    [ -f "$dest$prefix/$f" ] && pass "installed $prefix/$f" || fail "missing $prefix/$f"
  done
  local unit=$dest$prefix/lib/systemd/system/pooler.service
  if grep -qx "ExecStart=$prefix/bin/pooler -c $prefix/etc/pooler/pooler.toml" "$unit" &&
    grep -qx "ExecStartPre=$prefix/bin/pooler --check-config $prefix/etc/pooler/pooler.toml" "$unit" &&
    ! grep -q '/usr/bin/pooler\|/etc/pooler/pooler.toml' <(grep -v "$prefix" "$unit"); then
    pass "unit rewritten for $prefix"
  else
    fail "unit not rewritten for $prefix: $(grep '^Exec' "$unit")"
  fi
  if command -v systemd-analyze >/dev/null; then
    sed "s|$prefix/bin/pooler|$dest$prefix/bin/pooler|g" "$unit" >"$tmp/pooler.service"
    if out=$(systemd-analyze verify --man=no "$tmp/pooler.service" 2>&1) && [ -z "$out" ]; then
      pass "rewritten unit verifies"
    else
      fail "rewritten unit: $out"
    fi
  fi

  # An administrator's edit survives a second install; the new default lands beside it.
  echo "# edited by the administrator" >>"$dest$prefix/etc/pooler/pooler.toml"
  cp "$dest$prefix/etc/pooler/pooler.toml" "$tmp/edited.toml"
  DESTDIR=$dest cmake --install "$build" --prefix "$prefix" >"$tmp/install2.log" 2>&1 || { cat "$tmp/install2.log"; fail "second install"; }
  if cmp -s "$dest$prefix/etc/pooler/pooler.toml" "$tmp/edited.toml" &&
    cmp -s "$dest$prefix/etc/pooler/pooler.toml.dist" "$src/deploy/pooler.toml"; then
    pass "second install kept the edited config, wrote pooler.toml.dist"
  else
    fail "second install overwrote the edited config or wrote no .dist"
  fi
  finish
}

# Runs a maintainer script with every command it may call stubbed to log "name args" to $tmp/calls.
run_script() {
  local script=$1 exists=$2
  shift 2
  local stubs=$tmp/stubs
  rm -rf "$stubs" "$tmp/calls"
  mkdir -p "$stubs"
  touch "$tmp/calls"
  local cmd
  for cmd in adduser addgroup chown chmod systemctl deb-systemd-helper deb-systemd-invoke dpkg-statoverride; do
    printf '#!/bin/sh\necho "%s $*" >>"%s"\nexit 1\n' "$cmd" "$tmp/calls" >"$stubs/$cmd"
    [ "$cmd" = dpkg-statoverride ] || sed -i 's/^exit 1$/exit 0/' "$stubs/$cmd"
  done
  # getent answers "exists" or "missing" for both the user and the group.
  printf '#!/bin/sh\necho "getent $*" >>"%s"\nexit %s\n' "$tmp/calls" "$([ "$exists" = yes ] && echo 0 || echo 2)" >"$stubs/getent"
  chmod +x "$stubs"/*
  # The real paths are the system's; point the config and systemd's runtime directory at the sandbox.
  sed "s|/etc/pooler/pooler.toml|$tmp/etc/pooler.toml|g; s|/run/systemd/system|$tmp/run-systemd|g" \
    "$src/deploy/debian/$script" >"$tmp/$script"
  PATH=$stubs:$PATH sh "$tmp/$script" "$@"
}

test_scripts() {
  mkdir -p "$tmp/etc" "$tmp/run-systemd"
  touch "$tmp/etc/pooler.toml"
  local s
  for s in postinst prerm postrm; do
    sh -n "$src/deploy/debian/$s" && pass "$s: sh -n" || fail "$s: syntax"
    [ -x "$src/deploy/debian/$s" ] && pass "$s: executable in the repository" || fail "$s: not executable"
  done

  # Fresh install: group and user created, config made root:pooler 0640, systemd told to reload units.
  if run_script postinst no configure; then pass "postinst configure (fresh) exits 0"; else fail "postinst configure (fresh)"; fi
  grep -q '^addgroup --system --quiet pooler$' "$tmp/calls" && pass "fresh: addgroup --system pooler" || fail "fresh: no addgroup: $(cat "$tmp/calls")"
  grep -q '^adduser --system .*--ingroup pooler .*--no-create-home .* pooler$' "$tmp/calls" &&
    pass "fresh: adduser --system --ingroup pooler --no-create-home" || fail "fresh: adduser call: $(cat "$tmp/calls")"
  grep -q "^chown root:pooler $tmp/etc/pooler.toml$" "$tmp/calls" && grep -q "^chmod 0640 $tmp/etc/pooler.toml$" "$tmp/calls" &&
    pass "fresh: config root:pooler 0640" || fail "fresh: config owner/mode: $(cat "$tmp/calls")"
  grep -q '^systemctl --system daemon-reload$' "$tmp/calls" && pass "fresh: daemon-reload" || fail "fresh: no daemon-reload"
  if grep -Eq 'systemctl.*(enable|start|restart)|deb-systemd-(helper|invoke)' "$tmp/calls"; then
    fail "postinst enables or starts the service: $(cat "$tmp/calls")"
  else
    pass "postinst neither enables nor starts the service"
  fi

  # Upgrade with the user already there: nothing is created again.
  if run_script postinst yes configure 0.0.9-1; then pass "postinst configure (upgrade) exits 0"; else fail "postinst configure (upgrade)"; fi
  if grep -Eq '^(adduser|addgroup) ' "$tmp/calls"; then fail "upgrade: user created again"; else pass "upgrade: existing user and group kept"; fi

  # Removal stops a running service; an upgrade's prerm leaves it running.
  run_script prerm yes remove && grep -q '^systemctl --system stop pooler.service$' "$tmp/calls" &&
    pass "prerm remove stops pooler.service" || fail "prerm remove: $(cat "$tmp/calls")"
  run_script prerm yes upgrade 0.2.0-1 && ! grep -q 'stop' "$tmp/calls" &&
    pass "prerm upgrade leaves the service running" || fail "prerm upgrade: $(cat "$tmp/calls")"
  run_script postrm yes purge && ! grep -Eq '^(deluser|userdel)' "$tmp/calls" &&
    pass "postrm purge exits 0 and keeps the user" || fail "postrm purge: $(cat "$tmp/calls")"
  finish
}

case "$mode" in
  deb) test_deb ;;
  install) test_install ;;
  scripts) test_scripts ;;
  *)
    echo "usage: $0 deb|install|scripts SOURCE_DIR BUILD_DIR" >&2
    exit 64
    ;;
esac
