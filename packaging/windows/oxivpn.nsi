; OxiVPN installer for Windows (x86_64), built on Linux by `cargo xtask dist` with makensis:
;   makensis -DVERSION=0.1.0 -DBINDIR=<dir with the .exe files> -DOUTFILE=<setup.exe> oxivpn.nsi
; Optional: -DICON=<.ico>, -DFAST (no compression; CI smoke).
;
; Installs what exists in BINDIR: oxivpn-helper.exe and oxivpnctl.exe are required;
; wintun.dll (+ wintun-LICENSE.txt) is expected: without it the installer says that the
; tunnel adapter cannot be created. oxivpn.exe (the desktop app, with WebView2Loader.dll)
; is optional; without it there is no shortcut and no .ovpn association.
;
; The helper registers itself as the OxiVPNHelper service (`oxivpn-helper install-service`,
; code in helper/src/winservice): automatic start as LocalSystem, restart on failure,
; preshutdown time to undo routes/DNS/filters; its pipe admits SYSTEM, Administrators and
; the local group "OxiVPN Users", which this installer creates and adds the installing
; user to.

Unicode true
!include "LogicLib.nsh"
!include "x64.nsh"

!ifndef VERSION
  !error "pass -DVERSION=x.y.z"
!endif
!ifndef BINDIR
  !error "pass -DBINDIR=<directory with oxivpn-helper.exe and oxivpnctl.exe>"
!endif
!ifndef OUTFILE
  !define OUTFILE "oxivpn-${VERSION}-x86_64-setup.exe"
!endif

!define PRODUCT "OxiVPN"
!define SERVICE "OxiVPNHelper"
!define GROUP "OxiVPN Users"
!define PROGID "OxiVPN.Profile"
!define UNINST_KEY "Software\Microsoft\Windows\CurrentVersion\Uninstall\OxiVPN"

!if /FileExists "${BINDIR}\oxivpn.exe"
  !define HAVE_APP
!endif
!if /FileExists "${BINDIR}\wintun.dll"
  !define HAVE_WINTUN
!endif
!if /FileExists "${BINDIR}\WebView2Loader.dll"
  !define HAVE_WEBVIEW2_LOADER
!endif
; The Evergreen WebView2 runtime the app's window needs (part of Windows 11 and of
; updated Windows 10). Machine-wide installs register under WOW6432Node, per-user ones
; under HKCU. Microsoft's bootstrapper cannot be bundled from here (it is downloaded
; from Microsoft, and this build uses no download but the cargo registry), so a missing
; runtime gets a clear message and its download page.
!define WEBVIEW2_KEY "SOFTWARE\WOW6432Node\Microsoft\EdgeUpdate\Clients\{F3017226-FE2A-4295-8BDF-00C3A9A7E4C5}"
!define WEBVIEW2_USER_KEY "Software\Microsoft\EdgeUpdate\Clients\{F3017226-FE2A-4295-8BDF-00C3A9A7E4C5}"
!define WEBVIEW2_URL "https://go.microsoft.com/fwlink/p/?LinkId=2124703"

Name "${PRODUCT} ${VERSION}"
OutFile "${OUTFILE}"
InstallDir "$PROGRAMFILES64\${PRODUCT}"
InstallDirRegKey HKLM "${UNINST_KEY}" "InstallLocation"
RequestExecutionLevel admin
!ifdef FAST
  ; CI smoke: debug binaries, no compression (seconds instead of a minute).
  SetCompress off
!else
  SetCompressor /SOLID lzma
!endif
ShowInstDetails show
ShowUninstDetails show
!ifdef ICON
  Icon "${ICON}"
  UninstallIcon "${ICON}"
!endif

VIProductVersion "${VERSION}.0"
VIAddVersionKey "ProductName" "${PRODUCT}"
VIAddVersionKey "ProductVersion" "${VERSION}"
VIAddVersionKey "FileVersion" "${VERSION}"
VIAddVersionKey "FileDescription" "${PRODUCT} installer"
VIAddVersionKey "LegalCopyright" "GPL-2.0-only"

Page directory
Page instfiles
UninstPage uninstConfirm
UninstPage instfiles

Function .onInit
  ${IfNot} ${RunningX64}
    MessageBox MB_ICONSTOP "${PRODUCT} needs 64-bit Windows."
    Abort
  ${EndIf}
  SetRegView 64
FunctionEnd

Function un.onInit
  SetRegView 64
FunctionEnd

Section "OxiVPN" SecMain
  SectionIn RO
  ; Start-menu entry for every user; $APPDATA below is ProgramData.
  SetShellVarContext all
  ; An upgrade replaces a running helper: the old one stops (undoing its routes, DNS and
  ; filters, waiting until it has) and unregisters; older builds without the command
  ; fall back to sc.exe.
  ${If} ${FileExists} "$INSTDIR\oxivpn-helper.exe"
    nsExec::ExecToLog '"$INSTDIR\oxivpn-helper.exe" uninstall-service'
    Pop $0
  ${EndIf}
  nsExec::ExecToLog 'sc.exe stop ${SERVICE}'
  Pop $0
  Sleep 1000

  SetOutPath "$INSTDIR"
  File "${BINDIR}\oxivpn-helper.exe"
  File "${BINDIR}\oxivpnctl.exe"
!ifdef HAVE_WINTUN
  ; Wintun (WireGuard LLC's signed driver DLL, redistributable under its license).
  File "${BINDIR}\wintun.dll"
  File "${BINDIR}\wintun-LICENSE.txt"
!else
  MessageBox MB_ICONEXCLAMATION "This build of ${PRODUCT} does not include wintun.dll, so it cannot create its tunnel adapter. Put wintun.dll (amd64, from wintun.net) into $INSTDIR." /SD IDOK
  DetailPrint "wintun.dll NOT included: the helper cannot create the tunnel adapter until it is placed in $INSTDIR."
!endif
!ifdef HAVE_APP
  File "${BINDIR}\oxivpn.exe"
!ifdef HAVE_WEBVIEW2_LOADER
  File "${BINDIR}\WebView2Loader.dll"
!endif
!endif
!ifdef ICON
  File "/oname=oxivpn.ico" "${ICON}"
!endif
  WriteUninstaller "$INSTDIR\uninstall.exe"

  ; Members of this local group may use the helper (its pipe ACL names it); the
  ; service looks the group up when it starts, so create it first.
  nsExec::ExecToLog 'net.exe localgroup "${GROUP}" /add /comment:"May start and stop OxiVPN connections"'
  Pop $0
  ; The user who runs the installer may use OxiVPN at once (after the next sign-in,
  ; when Windows re-reads group memberships).
  ReadEnvStr $1 USERNAME
  ReadEnvStr $2 USERDOMAIN
  ${If} $1 != ""
    nsExec::ExecToLog 'net.exe localgroup "${GROUP}" "$2\$1" /add'
    Pop $0
    DetailPrint "Added $2\$1 to '${GROUP}' (takes effect at the next sign-in)."
  ${EndIf}
  DetailPrint "Add other accounts to '${GROUP}' (lusrmgr.msc, or: net localgroup $\"${GROUP}$\" USER /add) to let them use ${PRODUCT}."

  ; The helper registers and starts its service (automatic start, LocalSystem,
  ; restart on failure, preshutdown); see helper/src/winservice/config.rs.
  nsExec::ExecToLog '"$INSTDIR\oxivpn-helper.exe" install-service --start'
  Pop $0
  ${If} $0 != 0
    DetailPrint "Could not register or start the ${SERVICE} service (exit code $0); see the log above."
    MessageBox MB_ICONEXCLAMATION "The ${PRODUCT} helper service could not be registered or started (exit code $0)." /SD IDOK
  ${EndIf}

!ifdef HAVE_APP
  ReadRegStr $0 HKLM "${WEBVIEW2_KEY}" "pv"
  ${If} $0 == ""
  ${OrIf} $0 == "0.0.0.0"
    ReadRegStr $0 HKCU "${WEBVIEW2_USER_KEY}" "pv"
  ${EndIf}
  ${If} $0 == ""
  ${OrIf} $0 == "0.0.0.0"
    DetailPrint "The Microsoft Edge WebView2 Runtime is missing: the OxiVPN window needs it (oxivpnctl and the service work without). Get it from ${WEBVIEW2_URL}"
    MessageBox MB_YESNO|MB_ICONEXCLAMATION "The OxiVPN window needs the Microsoft Edge WebView2 Runtime, which is not installed on this computer. (The VPN service and oxivpnctl work without it.)$\r$\n$\r$\nOpen Microsoft's download page for the WebView2 Runtime now?" /SD IDNO IDNO webview2_done
    ExecShell "open" "${WEBVIEW2_URL}"
    webview2_done:
  ${Else}
    DetailPrint "Microsoft Edge WebView2 Runtime $0 found."
  ${EndIf}
!endif

!ifdef HAVE_APP
  CreateShortCut "$SMPROGRAMS\${PRODUCT}.lnk" "$INSTDIR\oxivpn.exe"
  ; Double-clicking a .ovpn file opens it in the app.
  WriteRegStr HKLM "Software\Classes\.ovpn" "" "${PROGID}"
  WriteRegStr HKLM "Software\Classes\.ovpn" "Content Type" "application/x-openvpn-profile"
  WriteRegStr HKLM "Software\Classes\${PROGID}" "" "OpenVPN profile"
  WriteRegStr HKLM "Software\Classes\${PROGID}\DefaultIcon" "" "$INSTDIR\oxivpn.exe,0"
  WriteRegStr HKLM "Software\Classes\${PROGID}\shell\open\command" "" '"$INSTDIR\oxivpn.exe" "%1"'
  System::Call 'shell32::SHChangeNotify(i 0x08000000, i 0, p 0, p 0)'
!endif

  WriteRegStr HKLM "${UNINST_KEY}" "DisplayName" "${PRODUCT}"
  WriteRegStr HKLM "${UNINST_KEY}" "DisplayVersion" "${VERSION}"
  WriteRegStr HKLM "${UNINST_KEY}" "Publisher" "OxiVPN developers"
  WriteRegStr HKLM "${UNINST_KEY}" "InstallLocation" "$INSTDIR"
  WriteRegStr HKLM "${UNINST_KEY}" "UninstallString" '"$INSTDIR\uninstall.exe"'
  WriteRegStr HKLM "${UNINST_KEY}" "QuietUninstallString" '"$INSTDIR\uninstall.exe" /S'
!ifdef ICON
  WriteRegStr HKLM "${UNINST_KEY}" "DisplayIcon" "$INSTDIR\oxivpn.ico"
!endif
  WriteRegDWORD HKLM "${UNINST_KEY}" "NoModify" 1
  WriteRegDWORD HKLM "${UNINST_KEY}" "NoRepair" 1
SectionEnd

Section "Uninstall"
  SetShellVarContext all
  ; Stopping the helper makes it undo its routes, DNS and filters before its files go;
  ; uninstall-service waits for that. sc.exe only if the helper could not do it.
  nsExec::ExecToLog '"$INSTDIR\oxivpn-helper.exe" uninstall-service'
  Pop $0
  ${If} $0 != 0
    nsExec::ExecToLog 'sc.exe stop ${SERVICE}'
    Pop $0
    Sleep 2000
    nsExec::ExecToLog 'sc.exe delete ${SERVICE}'
    Pop $0
  ${EndIf}
  nsExec::ExecToLog 'net.exe localgroup "${GROUP}" /delete'
  Pop $0

  ; Only remove the association if it is still ours.
  ReadRegStr $0 HKLM "Software\Classes\.ovpn" ""
  ${If} $0 == "${PROGID}"
    DeleteRegKey HKLM "Software\Classes\.ovpn"
  ${EndIf}
  DeleteRegKey HKLM "Software\Classes\${PROGID}"
  System::Call 'shell32::SHChangeNotify(i 0x08000000, i 0, p 0, p 0)'

  Delete "$SMPROGRAMS\${PRODUCT}.lnk"
  Delete "$INSTDIR\oxivpn-helper.exe"
  Delete "$INSTDIR\oxivpnctl.exe"
  Delete "$INSTDIR\oxivpn.exe"
  Delete "$INSTDIR\WebView2Loader.dll"
  Delete "$INSTDIR\wintun.dll"
  Delete "$INSTDIR\wintun-LICENSE.txt"
  Delete "$INSTDIR\oxivpn.ico"
  Delete "$INSTDIR\uninstall.exe"
  RMDir "$INSTDIR"
  ; The helper's state (undo journal) under ProgramData; user profiles stay.
  RMDir /r "$APPDATA\OxiVPN\helper"
  RMDir "$APPDATA\OxiVPN"
  DeleteRegKey HKLM "${UNINST_KEY}"
SectionEnd
