#!/usr/bin/env bash
# Type-checks the Rust workspace for another operating system from this Linux machine: macOS and Windows
# have no machine here, but their compile errors can be seen here.
#
#   scripts/cross-check.sh [TARGET ...] [-- CARGO_CHECK_ARGS ...]   (npm run cross-check:macos: both macOS targets;
#   npm run cross-check:windows: x86_64-pc-windows-gnu)
#   TARGET: x86_64-apple-darwin (default), aarch64-apple-darwin, x86_64-pc-windows-gnu, aarch64-unknown-linux-gnu ...
#   e.g. scripts/cross-check.sh x86_64-apple-darwin aarch64-apple-darwin -- --workspace --all-targets
#
# How: rustup can fetch no other target's standard library here, so the standard library is built from
# source (cargo -Zbuild-std) with Debian's rustc-web, cargo-web and rust-web-src, whose source matches that
# compiler; C code in dependencies (ring) is compiled by zig's clang (the ziglang package), which ships the
# other systems' C headers. Only `cargo check`: nothing is linked, nothing runs. Run it from the project's root.
# Installs what it needs on first use (apt, pip); CARGO_TARGET_DIR defaults to target/cross.
set -euo pipefail
targets=(); extra=()
while [ $# -gt 0 ]; do
  if [ "$1" = "--" ]; then shift; extra=("$@"); break; fi
  targets+=("$1"); shift
done
[ ${#targets[@]} -gt 0 ] || targets=(x86_64-apple-darwin)
[ ${#extra[@]} -gt 0 ] || extra=(--workspace)

SUDO=$(command -v sudo >/dev/null && [ "$(id -u)" != 0 ] && echo sudo || true)
need_apt=()
[ -x /usr/bin/cargo ] && /usr/bin/cargo --version 2>/dev/null | grep -q . || need_apt+=(cargo-web)
[ -x /usr/bin/rustc ] || need_apt+=(rustc-web)
[ -d /usr/lib/rustlib/src/rust/library ] || need_apt+=(rust-web-src)
for t in "${targets[@]}"; do
  case $t in *windows-gnu*) command -v x86_64-w64-mingw32-dlltool >/dev/null || need_apt+=(binutils-mingw-w64-x86-64) ;; esac
done
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "cross-check: installing ${need_apt[*]}" >&2
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
PY=$(command -v python3)
if ! "$PY" -c 'import ziglang' 2>/dev/null; then
  echo "cross-check: installing ziglang" >&2
  "$PY" -m pip install -q --disable-pip-version-check ziglang==0.13.0 >/dev/null 2>&1 || "$PY" -m pip install -q ziglang==0.13.0
fi
ZIG="$("$PY" -c 'import ziglang,os;print(os.path.dirname(ziglang.__file__))')/zig"

wrappers=$(mktemp -d)
trap 'rm -rf "$wrappers"' EXIT
status=0
for t in "${targets[@]}"; do
  case $t in
    x86_64-apple-darwin) zt=x86_64-macos ;;
    aarch64-apple-darwin) zt=aarch64-macos ;;
    x86_64-pc-windows-gnu) zt=x86_64-windows-gnu ;;
    aarch64-unknown-linux-gnu) zt=aarch64-linux-gnu ;;
    x86_64-unknown-linux-musl) zt=x86_64-linux-musl ;;
    *) zt= ;;
  esac
  cc="$wrappers/cc-$t"
  # cc-rs passes clang's own target spellings, which zig does not parse: zig gets the target from -target.
  cat > "$cc" <<SH
#!/usr/bin/env bash
args=()
skip=0
for a in "\$@"; do
  if [ \$skip = 1 ]; then skip=0; continue; fi
  case "\$a" in --target=*|-mmacosx-version-min=*) ;; -arch) skip=1 ;; *) args+=("\$a") ;; esac
done
exec "$ZIG" cc ${zt:+-target $zt} "\${args[@]}"
SH
  chmod +x "$cc"
  var=CC_$(echo "$t" | tr '-' '_')
  # napi-build wants a libnode.dll to link against on windows-gnu; `cargo check` links nothing, so an
  # empty stand-in satisfies its search.
  mkdir -p "$wrappers/libnode" && : > "$wrappers/libnode/libnode.dll"
  echo "== cargo check --target $t ${extra[*]}" >&2
  if env PATH="/usr/bin:$PATH" RUSTC_BOOTSTRAP=1 LIBNODE_PATH="$wrappers/libnode" "$var=$cc" CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target/cross}" \
      /usr/bin/cargo check -Zbuild-std=std,panic_abort --target "$t" "${extra[@]}"; then
    echo "cross-check $t: ok"
  else
    echo "cross-check $t: FAILED"; status=1
  fi
done
exit $status
