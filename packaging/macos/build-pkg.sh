#!/bin/sh
# Builds OxiVPN-<version>.pkg on a macOS machine (Xcode command line tools + rustup).
# It cannot run on Linux: pkgbuild, productbuild and lipo exist only on macOS.
#
#   packaging/macos/build-pkg.sh [OUT_DIR]          (default: target/dist)
#
# Optional environment:
#   OXIVPN_APP=/path/OxiVPN.app   a Tauri-built app bundle to ship in /Applications
#   INSTALLER_SIGN_ID="Developer ID Installer: ..."   sign the product archive
# Notarize the signed pkg afterwards with `xcrun notarytool submit --wait`.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${1:-$root/target/dist}
[ "$(uname -s)" = Darwin ] || { echo "build-pkg.sh: needs macOS (pkgbuild/productbuild)" >&2; exit 1; }

version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -n1)
[ -n "$version" ] || { echo "build-pkg.sh: no version in Cargo.toml" >&2; exit 1; }

# Universal binaries (Apple silicon + Intel).
targets="aarch64-apple-darwin x86_64-apple-darwin"
for t in $targets; do
    rustup target add "$t" >/dev/null
    (cd "$root" && cargo build --release --locked --target "$t" -p oxivpn-helper -p oxivpnctl)
done
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
pkgroot=$stage/root
mkdir -p "$pkgroot/Library/PrivilegedHelperTools" "$pkgroot/Library/LaunchDaemons" "$pkgroot/usr/local/bin"
lipo -create -output "$pkgroot/Library/PrivilegedHelperTools/com.oxivpn.helper" \
    "$root/target/aarch64-apple-darwin/release/oxivpn-helper" "$root/target/x86_64-apple-darwin/release/oxivpn-helper"
lipo -create -output "$pkgroot/usr/local/bin/oxivpnctl" \
    "$root/target/aarch64-apple-darwin/release/oxivpnctl" "$root/target/x86_64-apple-darwin/release/oxivpnctl"
cp "$here/com.oxivpn.helper.plist" "$pkgroot/Library/LaunchDaemons/"
plutil -lint "$pkgroot/Library/LaunchDaemons/com.oxivpn.helper.plist"
chmod 0755 "$pkgroot/Library/PrivilegedHelperTools/com.oxivpn.helper" "$pkgroot/usr/local/bin/oxivpnctl"
chmod 0644 "$pkgroot/Library/LaunchDaemons/com.oxivpn.helper.plist"
if [ -n "${OXIVPN_APP:-}" ]; then
    mkdir -p "$pkgroot/Applications"
    cp -R "$OXIVPN_APP" "$pkgroot/Applications/OxiVPN.app"
fi

# Binaries should not be relocated by Installer if a copy exists elsewhere.
pkgbuild --analyze --root "$pkgroot" "$stage/components.plist"
plutil -replace 0.BundleIsRelocatable -bool NO "$stage/components.plist" 2>/dev/null || true
pkgbuild --root "$pkgroot" --component-plist "$stage/components.plist" \
    --scripts "$here/scripts" --identifier com.oxivpn.pkg --version "$version" \
    --install-location / --ownership recommended "$stage/oxivpn-component.pkg"

mkdir -p "$out"
product="$out/OxiVPN-$version.pkg"
if [ -n "${INSTALLER_SIGN_ID:-}" ]; then
    productbuild --package "$stage/oxivpn-component.pkg" --sign "$INSTALLER_SIGN_ID" "$product"
else
    productbuild --package "$stage/oxivpn-component.pkg" "$product"
fi
pkgutil --payload-files "$product" | sed 's/^/  /'
ls -l "$product"
