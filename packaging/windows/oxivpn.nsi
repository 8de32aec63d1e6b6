; OxiVPN installer for Windows (x86_64), built on Linux by `cargo xtask dist` with makensis:
;   makensis -DVERSION=0.1.0 -DBINDIR=<dir with the .exe files> -DOUTFILE=<setup.exe> oxivpn.nsi
; Optional: -DICON=<.ico>, -DHELPER_IS_SERVICE (the helper implements the Windows service
; protocol; until then the service is registered for manual start only, see below).
;
; Installs what exists in BINDIR: oxivpn-helper.exe and oxivpnctl.exe are required,
; oxivpn.exe (the desktop app) is optional; without it there is no shortcut and no
; .ovpn association.

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

Name "${PRODUCT} ${VERSION}"
OutFile "${OUTFILE}"
InstallDir "$PROGRAMFILES64\${PRODUCT}"
InstallDirRegKey HKLM "${UNINST_KEY}" "InstallLocation"
RequestExecutionLevel admin
SetCompressor /SOLID lzma
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
  ; An upgrade replaces a running helper: stop it first (ignore "not installed").
  nsExec::ExecToLog 'sc.exe stop ${SERVICE}'
  Pop $0
  Sleep 1000

  SetOutPath "$INSTDIR"
  File "${BINDIR}\oxivpn-helper.exe"
  File "${BINDIR}\oxivpnctl.exe"
!ifdef HAVE_APP
  File "${BINDIR}\oxivpn.exe"
!endif
!ifdef ICON
  File "/oname=oxivpn.ico" "${ICON}"
!endif
  WriteUninstaller "$INSTDIR\uninstall.exe"

  ; Members of this local group may use the helper (its pipe ACL names it).
  nsExec::ExecToLog 'net.exe localgroup "${GROUP}" /add /comment:"May start and stop OxiVPN connections"'
  Pop $0
  DetailPrint "Add accounts to '${GROUP}' (lusrmgr.msc, or: net localgroup $\"${GROUP}$\" USER /add) to let them use ${PRODUCT}."

  ; The helper as a service running as LocalSystem, restarted when it fails.
  nsExec::ExecToLog 'sc.exe delete ${SERVICE}'
  Pop $0
!ifdef HELPER_IS_SERVICE
  nsExec::ExecToLog 'sc.exe create ${SERVICE} binPath= "\"$INSTDIR\oxivpn-helper.exe\" service" start= auto DisplayName= "OxiVPN helper"'
!else
  ; The helper does not speak the service protocol yet: register it for manual start
  ; so that Windows does not log a failure at every boot.
  nsExec::ExecToLog 'sc.exe create ${SERVICE} binPath= "\"$INSTDIR\oxivpn-helper.exe\" service" start= demand DisplayName= "OxiVPN helper"'
!endif
  Pop $0
  ${If} $0 != 0
    DetailPrint "Could not register the ${SERVICE} service (sc.exe exit code $0)."
  ${EndIf}
  nsExec::ExecToLog 'sc.exe description ${SERVICE} "Owns the OxiVPN tunnel, routes and DNS for members of ${GROUP}."'
  Pop $0
  nsExec::ExecToLog 'sc.exe failure ${SERVICE} reset= 86400 actions= restart/2000/restart/5000//'
  Pop $0
!ifdef HELPER_IS_SERVICE
  nsExec::ExecToLog 'sc.exe start ${SERVICE}'
  Pop $0
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
  ; Stopping the helper makes it undo its routes and DNS before its files go.
  nsExec::ExecToLog 'sc.exe stop ${SERVICE}'
  Pop $0
  Sleep 2000
  nsExec::ExecToLog 'sc.exe delete ${SERVICE}'
  Pop $0
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
  Delete "$INSTDIR\oxivpn.ico"
  Delete "$INSTDIR\uninstall.exe"
  RMDir "$INSTDIR"
  ; The helper's state (undo journal) under ProgramData; user profiles stay.
  RMDir /r "$APPDATA\OxiVPN\helper"
  RMDir "$APPDATA\OxiVPN"
  DeleteRegKey HKLM "${UNINST_KEY}"
SectionEnd
