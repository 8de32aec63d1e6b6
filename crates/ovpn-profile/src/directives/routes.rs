//! Routes and DNS.

use crate::build::*;
use crate::material;
use crate::profile::*;
use crate::reader::RawDirective;
use crate::report::Severity;

use super::*;

impl Builder {
    pub(super) fn on_route_nopull(&mut self, d: &RawDirective) {
        self.p.route_nopull = true;
        self.honour(d, "ignores routes pushed by the server");
    }

    pub(super) fn on_pull_filter(&mut self, d: &RawDirective) {
        let a = &d.args;
        if self.arity(d, 2, 2) {
            let action = match a[0].as_str() {
                "accept" => PullFilterAction::Accept,
                "ignore" => PullFilterAction::Ignore,
                "reject" => PullFilterAction::Reject,
                other => {
                    self.error(
                        d,
                        format!("has the unknown action {other:?} (accept, ignore or reject)"),
                    );
                    return;
                }
            };
            self.p.pull_filters.push(PullFilter {
                action,
                text: a[1].clone(),
            });
            self.honour(
                d,
                format!("{} pushed options starting with {:?}", a[0], a[1]),
            );
        }
    }

    pub(super) fn on_route(&mut self, d: &RawDirective) {
        let a = &d.args;
        if self.arity(d, 1, 4) {
            if material::looks_like_placeholder(&a[0]) {
                self.error(d, format!("has the template placeholder {:?}", a[0]));
                return;
            }
            let metric = match a.get(3) {
                Some(m) if m != "default" => match self.num(d, 3) {
                    Some(n) => Some(n),
                    None => return,
                },
                _ => None,
            };
            let opt = |i: usize| a.get(i).filter(|s| s.as_str() != "default").cloned();
            self.p.routes.push(Route {
                network: a[0].clone(),
                netmask: opt(1),
                gateway: opt(2),
                metric,
            });
            self.honour(d, format!("adds a route to {}", a[0]));
        }
    }

    pub(super) fn on_route_ipv6(&mut self, d: &RawDirective) {
        let a = &d.args;
        if self.arity(d, 1, 3) {
            let metric = match a.get(2) {
                Some(_) => match self.num(d, 2) {
                    Some(n) => Some(n),
                    None => return,
                },
                None => None,
            };
            self.p.routes_ipv6.push(RouteIpv6 {
                network: a[0].clone(),
                gateway: a.get(1).cloned(),
                metric,
            });
            self.honour(d, format!("adds an IPv6 route to {}", a[0]));
        }
    }

    pub(super) fn on_redirect_gateway(&mut self, d: &RawDirective) {
        let a = &d.args;
        let g = Some(RedirectGateway { flags: a.clone() });
        if d.name == "redirect-gateway" {
            self.p.redirect_gateway = g;
            self.honour(d, "sends all traffic through the VPN");
        } else {
            self.p.redirect_private = g;
            self.not_applied(
                d,
                "is not applied yet: private networks go through the VPN only as the routes say",
            );
        }
    }

    pub(super) fn on_dhcp_option(&mut self, d: &RawDirective) {
        let a = &d.args;
        if self.arity(d, 1, 2) {
            let kind = a[0].to_ascii_uppercase();
            let value = a.get(1).cloned();
            let shown = format!("{} {}", a[0], value.as_deref().unwrap_or(""))
                .trim()
                .to_owned();
            match kind.as_str() {
                "DNS" | "DNS6" => {
                    if value
                        .as_deref()
                        .and_then(|v| v.parse::<std::net::IpAddr>().ok())
                        .is_none()
                    {
                        self.error(d, format!("{shown}: the DNS server must be an IP address"));
                        return;
                    }
                    self.honour(d, format!("{shown}: DNS server while connected, before the ones the server pushes"));
                }
                "DOMAIN" | "DOMAIN-SEARCH" => {
                    self.honour(d, format!("{shown}: search domain while connected"));
                }
                _ => self.push(
                    d.line,
                    &d.name,
                    Severity::Ignored,
                    format!("{shown}: OxiVPN sets only DNS servers and search domains"),
                ),
            }
            self.p.dhcp_options.push(DhcpOption {
                kind: a[0].clone(),
                value,
            });
        }
    }

    pub(super) fn on_dns(&mut self, d: &RawDirective) {
        let a = &d.args;
        if self.arity(d, 1, 16) {
            self.p.dns.push(a.clone());
            self.honour(d, "DNS setting while connected; a server pushing the same server priority replaces it");
        }
    }

    pub(super) fn on_block_outside_dns(&mut self, d: &RawDirective) {
        self.p.block_outside_dns = true;
        if cfg!(windows) {
            self.not_applied(
                d,
                "is not applied yet on Windows: with the kill switch on, DNS outside the tunnel is blocked anyway",
            );
        } else {
            self.push(
                d.line,
                &d.name,
                Severity::Ignored,
                "only matters on Windows (which asks every network's DNS servers); here DNS goes only where the tunnel's settings send it",
            );
        }
    }

    pub(super) fn on_route_metric(&mut self, d: &RawDirective) {
        if self.arity(d, 1, 1) {
            if let Some(n) = self.num(d, 0) {
                self.p.route_metric = Some(n);
                self.honour(d, format!("route metric {n}"));
            }
        }
    }

    pub(super) fn on_route_delay(&mut self, d: &RawDirective) {
        let a = &d.args;
        if self.arity(d, 0, 2) {
            let n = if a.is_empty() {
                Some(0)
            } else {
                self.num(d, 0)
            };
            let w = if a.len() > 1 {
                self.num(d, 1).map(Some)
            } else {
                Some(None)
            };
            if let (Some(n), Some(w)) = (n, w) {
                self.p.route_delay = Some((n, w));
                self.not_applied(
                    d,
                    "is not applied: routes are added as soon as the tunnel is up",
                );
            }
        }
    }
}

const BLOCK_OUTSIDE_DNS: Class = if cfg!(windows) { UNSUPPORTED } else { IGNORED };

pub(super) const ENTRIES: &[Directive] = &[
    Directive::top(
        &["route-nopull"],
        HONOURED,
        "ignores routes pushed by the server",
        Builder::on_route_nopull,
    ),
    Directive::top(
        &["pull-filter"],
        HONOURED,
        "accepts, ignores or rejects pushed options by their start",
        Builder::on_pull_filter,
    ),
    Directive::top(
        &["route"],
        HONOURED,
        "adds a route through the tunnel",
        Builder::on_route,
    ),
    Directive::top(
        &["route-ipv6"],
        HONOURED,
        "adds an IPv6 route through the tunnel",
        Builder::on_route_ipv6,
    ),
    Directive::top(
        &["redirect-gateway"],
        HONOURED,
        "sends all traffic through the VPN",
        Builder::on_redirect_gateway,
    ),
    Directive::top(
        &["redirect-private"],
        UNSUPPORTED,
        "is not applied yet",
        Builder::on_redirect_gateway,
    ),
    Directive::top(
        &["dhcp-option"],
        HONOURED,
        "DNS servers and search domains while connected (other kinds are ignored)",
        Builder::on_dhcp_option,
    )
    .also(&[IGNORED]),
    Directive::top(
        &["dns"],
        HONOURED,
        "DNS setting while connected; a pushed one of the same priority replaces it",
        Builder::on_dns,
    ),
    Directive::top(
        &["block-outside-dns"],
        BLOCK_OUTSIDE_DNS,
        "only matters on Windows, where it is not applied yet",
        Builder::on_block_outside_dns,
    ),
    Directive::top(
        &["route-metric"],
        HONOURED,
        "route metric",
        Builder::on_route_metric,
    ),
    Directive::top(
        &["route-delay"],
        UNSUPPORTED,
        "is not applied: routes are added as soon as the tunnel is up",
        Builder::on_route_delay,
    ),
];
