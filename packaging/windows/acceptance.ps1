<#
.SYNOPSIS
  OxiVPN acceptance on a real Windows 10/11 machine (what Wine cannot show: wintun, routes,
  NRPT, WFP). Run in an elevated PowerShell; every step prints PASS or FAIL.

.DESCRIPTION
  Phases (default: Install, Connect, PrepareReboot; then reboot and run the rest):
    Install       silent install; service, files, Start-menu entry, .ovpn association
    Connect       import the profile, connect, routes, DNS (NRPT), kill switch (WFP),
                  leak probe, kill the helper (filters must stay and keep blocking),
                  service start (recovery undoes everything), reconnect, disconnect
    PrepareReboot connect and leave the tunnel up, then reboot the machine yourself
    AfterReboot   service back, nothing left of the tunnel (routes, NRPT, WFP, adapter)
    Uninstall     silent uninstall; service, files, group, association gone

  Example:
    powershell -ExecutionPolicy Bypass -File acceptance.ps1 -Installer .\oxivpn-0.1.0-x86_64-setup.exe -Profile C:\vpn\work.ovpn
    (reboot)
    powershell -ExecutionPolicy Bypass -File acceptance.ps1 -Phase AfterReboot,Uninstall

  The exit code is the number of failed steps. A transcript goes to %TEMP%\oxivpn-acceptance.log.
#>
param(
    [string]$Installer,
    [string]$Profile,
    # User name and password, one per line, for profiles with auth-user-pass.
    [string]$AuthFile,
    # A public address the leak probe tries to reach outside the tunnel.
    [string]$ProbeHost = "1.1.1.1",
    [ValidateSet("Install", "Connect", "PrepareReboot", "AfterReboot", "Uninstall")]
    [string[]]$Phase = @("Install", "Connect", "PrepareReboot")
)

$ErrorActionPreference = "Stop"
$Service = "OxiVPNHelper"
$InstDir = Join-Path $env:ProgramFiles "OxiVPN"
$Ctl = Join-Path $InstDir "oxivpnctl.exe"
$Helper = Join-Path $InstDir "oxivpn-helper.exe"
$Name = "acceptance"
$script:Failed = 0
$script:Passed = 0
Start-Transcript -Append -Path (Join-Path $env:TEMP "oxivpn-acceptance.log") | Out-Null

function Step([string]$What, [scriptblock]$Check) {
    try {
        $detail = & $Check
        Write-Host ("PASS  {0}{1}" -f $What, $(if ($detail) { " - $detail" } else { "" })) -ForegroundColor Green
        $script:Passed++
    } catch {
        Write-Host ("FAIL  {0} - {1}" -f $What, $_.Exception.Message) -ForegroundColor Red
        $script:Failed++
    }
}

function Ctl([string[]]$CtlArgs) {
    $out = & $Ctl --json @CtlArgs 2>&1
    if ($LASTEXITCODE -ne 0) { throw "oxivpnctl $($CtlArgs -join ' ') failed: $out" }
    return $out | Where-Object { $_ -is [string] -and $_.Trim().StartsWith("{") } | ForEach-Object { $_ | ConvertFrom-Json }
}

function Session() {
    $s = Ctl @("status")
    return $s.sessions | Where-Object { $_.profile_name -eq $Name } | Select-Object -First 1
}

function Connected-Interface() {
    $s = Session
    if (-not $s -or -not $s.stage.connected) { throw "session stage: $($s.stage | ConvertTo-Json -Compress)" }
    return $s.stage.connected.interface
}

function OxiVPN-Filters() {
    $xml = Join-Path $env:TEMP "oxivpn-wfp.xml"
    netsh wfp show filters file=$xml | Out-Null
    $n = (Select-String -Path $xml -Pattern "OxiVPN kill switch" -SimpleMatch).Count
    Remove-Item $xml -ErrorAction SilentlyContinue
    return $n
}

function Nrpt-Rules() {
    $key = "HKLM:\SYSTEM\CurrentControlSet\Services\Dnscache\Parameters\DnsPolicyConfig"
    if (-not (Test-Path $key)) { return @() }
    return @(Get-ChildItem $key | Where-Object { $_.PSChildName -like "OxiVPN-*" })
}

function Physical-Address() {
    # The address of the interface holding the original default route (not the tunnel).
    $r = Get-NetRoute -DestinationPrefix "0.0.0.0/0" | Where-Object { $_.InterfaceAlias -ne "OxiVPN" } |
        Sort-Object RouteMetric | Select-Object -First 1
    if (-not $r) { throw "no default route outside the tunnel" }
    return (Get-NetIPAddress -InterfaceIndex $r.ifIndex -AddressFamily IPv4 | Select-Object -First 1).IPAddress
}

function Probe-Outside([string]$Source) {
    # ping from the physical address: only a leak gets an answer while the kill switch is on.
    $null = ping.exe -n 2 -w 1500 -S $Source $ProbeHost
    return $LASTEXITCODE -eq 0
}

function Connect-Profile() {
    $a = @("connect", $Name, "--timeout", "90", "--kill-switch", "on")
    if ($AuthFile) { $a += @("--auth-file", $AuthFile) }
    Ctl $a | Out-Null
    return Connected-Interface
}

function Tunnel-Gone() {
    $left = @()
    if (Get-NetRoute -ErrorAction SilentlyContinue | Where-Object { $_.InterfaceAlias -eq "OxiVPN" -and $_.DestinationPrefix -in "0.0.0.0/1", "128.0.0.0/1" }) { $left += "def1 routes" }
    if ((Nrpt-Rules).Count -gt 0) { $left += "NRPT rule" }
    if ((OxiVPN-Filters) -gt 0) { $left += "WFP filters" }
    if ($left.Count -gt 0) { throw "left behind: $($left -join ', ')" }
}

if (-not ([Security.Principal.WindowsPrincipal][Security.Principal.WindowsIdentity]::GetCurrent()).IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)) {
    Write-Host "FAIL  run this script in an elevated PowerShell" -ForegroundColor Red
    exit 1
}
Write-Host ("OxiVPN acceptance on {0} ({1}), phases: {2}" -f (Get-CimInstance Win32_OperatingSystem).Caption, [Environment]::OSVersion.Version, ($Phase -join ", "))

if ($Phase -contains "Install") {
    Step "installer runs silently" {
        if (-not $Installer) { throw "pass -Installer" }
        $p = Start-Process -FilePath $Installer -ArgumentList "/S" -Wait -PassThru
        if ($p.ExitCode -ne 0) { throw "exit code $($p.ExitCode)" }
    }
    Step "service OxiVPNHelper running, automatic start" {
        $s = Get-Service $Service
        if ($s.Status -ne "Running" -or $s.StartType -ne "Automatic") { throw "$($s.Status), $($s.StartType)" }
    }
    Step "files installed" {
        foreach ($f in "oxivpn-helper.exe", "oxivpnctl.exe", "wintun.dll", "oxivpn.exe", "WebView2Loader.dll", "uninstall.exe") {
            if (-not (Test-Path (Join-Path $InstDir $f))) { throw "$f missing" }
        }
    }
    Step "Start-menu entry and .ovpn association" {
        if (-not (Test-Path (Join-Path $env:ProgramData "Microsoft\Windows\Start Menu\Programs\OxiVPN.lnk"))) { throw "no shortcut" }
        $prog = (Get-ItemProperty "HKLM:\Software\Classes\.ovpn")."(default)"
        if ($prog -ne "OxiVPN.Profile") { throw ".ovpn -> $prog" }
    }
    Step "local group 'OxiVPN Users' exists" { Get-LocalGroup "OxiVPN Users" | Out-Null }
    Step "the app's window can open (WebView2 runtime present)" {
        $k = "HKLM:\SOFTWARE\WOW6432Node\Microsoft\EdgeUpdate\Clients\{F3017226-FE2A-4295-8BDF-00C3A9A7E4C5}"
        $v = (Get-ItemProperty $k -ErrorAction SilentlyContinue).pv
        if (-not $v -or $v -eq "0.0.0.0") { throw "WebView2 runtime missing (the installer should have said so)" }
        $v
    }
    Step "helper answers over its pipe" { (Ctl @("status")).helper.helper_version }
}

if ($Phase -contains "Connect") {
    Step "import the profile" {
        if (-not $Profile) { throw "pass -Profile" }
        (Ctl @("import", $Profile, "--name", $Name)).imported
    }
    Step "connect reaches Connected" { "interface $(Connect-Profile)" }
    Step "wintun adapter up" {
        $a = Get-NetAdapter | Where-Object { $_.InterfaceDescription -like "*Wintun*" -or $_.Name -eq "OxiVPN" }
        if (-not $a -or $a.Status -ne "Up") { throw "no wintun adapter up" }
        $a.Name
    }
    Step "routes: the probe goes into the tunnel, the server outside it" {
        $r = Find-NetRoute -RemoteIPAddress $ProbeHost | Where-Object { $_.InterfaceAlias } | Select-Object -First 1
        if ($r.InterfaceAlias -ne "OxiVPN") { throw "$ProbeHost leaves through $($r.InterfaceAlias)" }
        $server = (Session).connection.server_addr
        $rs = Find-NetRoute -RemoteIPAddress $server | Where-Object { $_.InterfaceAlias } | Select-Object -First 1
        if ($rs.InterfaceAlias -eq "OxiVPN") { throw "the server $server is routed into its own tunnel" }
        "server $server via $($rs.InterfaceAlias)"
    }
    Step "DNS: NRPT rule for the tunnel and names resolve" {
        $rules = Nrpt-Rules
        if ($rules.Count -ne 1) { throw "$($rules.Count) OxiVPN NRPT rules" }
        $servers = (Get-ItemProperty $rules[0].PSPath).GenericDNSServers
        Resolve-DnsName -DnsOnly "www.microsoft.com" | Out-Null
        "servers $servers"
    }
    Step "kill switch: WFP filters installed" {
        $n = OxiVPN-Filters
        if ($n -eq 0) { throw "no 'OxiVPN kill switch' filters" }
        "$n filters"
    }
    $phys = try { Physical-Address } catch { "0.0.0.0" }
    Step "leak probe: nothing leaves outside the tunnel" {
        if (Probe-Outside $phys) { throw "$ProbeHost answered a ping sent from $phys outside the tunnel" }
        $dns = (Get-DnsClientServerAddress -AddressFamily IPv4 | Where-Object { $_.InterfaceAlias -ne "OxiVPN" -and $_.ServerAddresses } | Select-Object -First 1).ServerAddresses | Select-Object -First 1
        if ($dns) {
            try { Resolve-DnsName -DnsOnly -Server $dns -QuickTimeout "example.com" -ErrorAction Stop | Out-Null; throw "DNS to $dns outside the tunnel answered" }
            catch { if ($_.Exception.Message -like "DNS to*") { throw } }
        }
        "ping from $phys and DNS to $dns blocked"
    }
    Step "kill the helper: filters stay and keep blocking" {
        # No automatic restart for this step (restored below by install-service).
        sc.exe failure $Service reset= 86400 actions= restart/600000 | Out-Null
        Stop-Process -Name "oxivpn-helper" -Force
        Start-Sleep -Seconds 2
        if ((OxiVPN-Filters) -eq 0) { throw "the filters went with the helper" }
        if (Probe-Outside $phys) { throw "traffic leaks while the helper is dead" }
    }
    Step "service start recovers: the dead session's changes are undone" {
        Start-Service $Service
        Start-Sleep -Seconds 3
        Tunnel-Gone
        & $Helper install-service | Out-Null  # restores the recovery actions
        if ($LASTEXITCODE -ne 0) { throw "install-service (restoring the configuration) failed" }
    }
    Step "reconnect after recovery" { Connect-Profile }
    Step "disconnect undoes routes, DNS and filters" {
        Ctl @("disconnect", $Name) | Out-Null
        Start-Sleep -Seconds 1
        Tunnel-Gone
        if (-not (Probe-Outside $phys)) { throw "$ProbeHost unreachable after disconnect (or blocks ping: choose another -ProbeHost)" }
    }
}

if ($Phase -contains "PrepareReboot") {
    Step "connect and leave it up for the reboot test" { Connect-Profile }
    Write-Host "NEXT  reboot now, then run: acceptance.ps1 -Phase AfterReboot,Uninstall" -ForegroundColor Yellow
}

if ($Phase -contains "AfterReboot") {
    Step "service running after boot" {
        $deadline = (Get-Date).AddSeconds(60)
        while ((Get-Service $Service).Status -ne "Running") {
            if ((Get-Date) -gt $deadline) { throw "not running 60 s after this script started" }
            Start-Sleep -Seconds 2
        }
    }
    Step "nothing of the last boot's tunnel is left (routes, NRPT, WFP)" { Tunnel-Gone }
    Step "no session survived the reboot" {
        if (Session) { throw "a session is listed" }
    }
    Step "network works after the reboot" {
        if (-not (Probe-Outside (Physical-Address))) { throw "$ProbeHost unreachable" }
    }
}

if ($Phase -contains "Uninstall") {
    Step "uninstaller runs silently" {
        $u = Join-Path $InstDir "uninstall.exe"
        $p = Start-Process -FilePath $u -ArgumentList "/S", "_?=$InstDir" -Wait -PassThru
        if ($p.ExitCode -ne 0) { throw "exit code $($p.ExitCode)" }
        Remove-Item (Join-Path $InstDir "uninstall.exe") -ErrorAction SilentlyContinue
        Remove-Item $InstDir -ErrorAction SilentlyContinue
    }
    Step "service, files, group and association removed" {
        if (Get-Service $Service -ErrorAction SilentlyContinue) { throw "service still registered" }
        if (Test-Path $InstDir) { throw "$InstDir still there" }
        if (Get-LocalGroup "OxiVPN Users" -ErrorAction SilentlyContinue) { throw "group still there" }
        if ((Get-ItemProperty "HKLM:\Software\Classes\.ovpn" -ErrorAction SilentlyContinue)."(default)" -eq "OxiVPN.Profile") { throw "association still there" }
    }
    Step "no tunnel state left" { Tunnel-Gone }
}

Write-Host ("{0} passed, {1} failed" -f $script:Passed, $script:Failed)
Stop-Transcript | Out-Null
exit $script:Failed
