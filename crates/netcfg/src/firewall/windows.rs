//! The kill switch on Windows: the filters of [`super::wfp_rules`] added to our own
//! WFP provider and sublayer in one transaction (atomic replace, like the nft batch).
//!
//! The WFP session is NOT dynamic: the filters outlive the helper process (a crashed
//! helper must leave the machine blocked, as on Linux) and are dropped at reboot (the
//! helper starts at boot and decides from its journal, see `Firewall::recover`).
//! COMPILED for x86_64-pc-windows-gnu only; not run here.

#![allow(unsafe_code)] // WFP is a C API; each call's contract is noted beside it.

use std::ptr::{null, null_mut};

use ipnet::IpNet;
use windows_sys::core::GUID;
use windows_sys::Win32::Foundation::{FWP_E_PROVIDER_NOT_FOUND, FWP_E_SUBLAYER_NOT_FOUND, HANDLE};
use windows_sys::Win32::NetworkManagement::IpHelper::ConvertInterfaceAliasToLuid;
use windows_sys::Win32::NetworkManagement::Ndis::NET_LUID_LH;
use windows_sys::Win32::NetworkManagement::WindowsFilteringPlatform::*;
use windows_sys::Win32::System::Rpc::RPC_C_AUTHN_DEFAULT;

use super::wfp_rules::{self, Action, Condition, Family, WfpFilter};
use super::{FirewallOptions, FirewallPolicy};
use crate::Error;

const PROVIDER_KEY: GUID = GUID::from_u128(0x6f786976_706e_4b53_9000_000000000001);
const SUBLAYER_KEY: GUID = GUID::from_u128(0x6f786976_706e_4b53_9000_000000000002);
/// Filter i has key FILTER_KEY_BASE + i (stable names for `netsh wfp show filters`).
const FILTER_KEY_BASE: u128 = 0x6f786976_706e_4b53_9100_000000000000;
const MAX_FILTERS: usize = 128;

fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(std::iter::once(0)).collect()
}

fn check(what: &str, code: u32) -> Result<(), Error> {
    if code == 0 {
        return Ok(());
    }
    Err(Error::Firewall {
        what: format!("WFP: {what}"),
        source: std::io::Error::from_raw_os_error(code as i32),
    })
}

struct Engine(HANDLE);

impl Engine {
    fn open() -> Result<Self, Error> {
        let session = FWPM_SESSION0 {
            txnWaitTimeoutInMSec: 5_000,
            ..Default::default()
        };
        let mut h: HANDLE = null_mut();
        // SAFETY: session lives across the call; h receives the engine handle.
        let rc = unsafe {
            FwpmEngineOpen0(null(), RPC_C_AUTHN_DEFAULT as u32, null(), &session, &mut h)
        };
        check("open the filter engine (is the BFE service running?)", rc)?;
        Ok(Self(h))
    }

    /// Runs `f` in one transaction: all of it or nothing.
    fn transaction(&self, f: impl FnOnce(&Self) -> Result<(), Error>) -> Result<(), Error> {
        // SAFETY: a valid engine handle.
        check("begin a transaction", unsafe {
            FwpmTransactionBegin0(self.0, 0)
        })?;
        match f(self) {
            Ok(()) => check("commit", unsafe { FwpmTransactionCommit0(self.0) }),
            Err(e) => {
                // SAFETY: a transaction is open on this handle.
                unsafe { FwpmTransactionAbort0(self.0) };
                Err(e)
            }
        }
    }

    /// Ids of every filter of our provider, by enumeration (read-only: a failed call
    /// inside a transaction would leave it for abort only).
    fn our_filter_ids(&self) -> Result<Vec<u64>, Error> {
        const BATCH: u32 = 256;
        let mut ids = Vec::new();
        for layer in [
            FWPM_LAYER_ALE_AUTH_CONNECT_V4,
            FWPM_LAYER_ALE_AUTH_CONNECT_V6,
        ] {
            let mut pkey = PROVIDER_KEY;
            let template = FWPM_FILTER_ENUM_TEMPLATE0 {
                providerKey: &mut pkey,
                layerKey: layer,
                enumType: FWP_FILTER_ENUM_OVERLAPPING,
                flags: 0,
                providerContextTemplate: null_mut(),
                numFilterConditions: 0,
                filterCondition: null_mut(),
                actionMask: u32::MAX,
                calloutKey: null_mut(),
            };
            let mut h: HANDLE = null_mut();
            // SAFETY: template (and pkey) outlive the call; h receives the enum handle.
            check("enumerate filters", unsafe {
                FwpmFilterCreateEnumHandle0(self.0, &template, &mut h)
            })?;
            let result = loop {
                let mut entries: *mut *mut FWPM_FILTER0 = null_mut();
                let mut n = 0u32;
                // SAFETY: entries receives an array of n filters owned by WFP.
                let rc = unsafe { FwpmFilterEnum0(self.0, h, BATCH, &mut entries, &mut n) };
                if rc != 0 {
                    break check("enumerate filters", rc);
                }
                for i in 0..n as usize {
                    // SAFETY: i < n entries, each a valid filter pointer.
                    ids.push(unsafe { (**entries.add(i)).filterId });
                }
                if !entries.is_null() {
                    // SAFETY: allocated by FwpmFilterEnum0.
                    unsafe {
                        FwpmFreeMemory0(&mut entries as *mut _ as *mut *mut core::ffi::c_void)
                    };
                }
                if n < BATCH {
                    break Ok(());
                }
            };
            // SAFETY: the handle from FwpmFilterCreateEnumHandle0 above.
            unsafe { FwpmFilterDestroyEnumHandle0(self.0, h) };
            result?;
        }
        Ok(ids)
    }

    fn delete_filters(&self) -> Result<(), Error> {
        for id in self.our_filter_ids()? {
            // SAFETY: an id WFP just listed.
            check("delete a filter", unsafe {
                FwpmFilterDeleteById0(self.0, id)
            })?;
        }
        Ok(())
    }

    fn provider_exists(&self) -> Result<bool, Error> {
        let mut p: *mut FWPM_PROVIDER0 = null_mut();
        // SAFETY: p receives WFP-owned memory, freed below.
        let rc = unsafe { FwpmProviderGetByKey0(self.0, &PROVIDER_KEY, &mut p) };
        if rc as i32 == FWP_E_PROVIDER_NOT_FOUND {
            return Ok(false);
        }
        check("look up the provider", rc)?;
        // SAFETY: allocated by FwpmProviderGetByKey0.
        unsafe { FwpmFreeMemory0(&mut p as *mut _ as *mut *mut core::ffi::c_void) };
        Ok(true)
    }

    fn sublayer_exists(&self) -> Result<bool, Error> {
        let mut sl: *mut FWPM_SUBLAYER0 = null_mut();
        // SAFETY: sl receives WFP-owned memory, freed below.
        let rc = unsafe { FwpmSubLayerGetByKey0(self.0, &SUBLAYER_KEY, &mut sl) };
        if rc as i32 == FWP_E_SUBLAYER_NOT_FOUND {
            return Ok(false);
        }
        check("look up the sublayer", rc)?;
        // SAFETY: allocated by FwpmSubLayerGetByKey0.
        unsafe { FwpmFreeMemory0(&mut sl as *mut _ as *mut *mut core::ffi::c_void) };
        Ok(true)
    }

    fn ensure_provider_and_sublayer(&self) -> Result<(), Error> {
        let mut name = wide("OxiVPN");
        let mut desc = wide("OxiVPN kill switch");
        let provider = FWPM_PROVIDER0 {
            providerKey: PROVIDER_KEY,
            displayData: FWPM_DISPLAY_DATA0 {
                name: name.as_mut_ptr(),
                description: desc.as_mut_ptr(),
            },
            ..Default::default()
        };
        if !self.provider_exists()? {
            // SAFETY: the strings outlive the call; no security descriptor.
            check("add the provider", unsafe {
                FwpmProviderAdd0(self.0, &provider, null_mut())
            })?;
        }
        let mut pkey = PROVIDER_KEY;
        let sublayer = FWPM_SUBLAYER0 {
            subLayerKey: SUBLAYER_KEY,
            displayData: FWPM_DISPLAY_DATA0 {
                name: name.as_mut_ptr(),
                description: desc.as_mut_ptr(),
            },
            providerKey: &mut pkey,
            weight: u16::MAX,
            ..Default::default()
        };
        if self.sublayer_exists()? {
            return Ok(());
        }
        // SAFETY: as above.
        check("add the sublayer", unsafe {
            FwpmSubLayerAdd0(self.0, &sublayer, null_mut())
        })
    }

    fn add(&self, index: usize, flt: &WfpFilter) -> Result<(), Error> {
        let mut store = CondStore::default();
        let mut conds: Vec<FWPM_FILTER_CONDITION0> = flt
            .conditions
            .iter()
            .map(|c| store.condition(c))
            .collect::<Result<_, _>>()?;
        let mut name = wide(&flt.name);
        let mut pkey = PROVIDER_KEY;
        let filter = FWPM_FILTER0 {
            filterKey: GUID::from_u128(FILTER_KEY_BASE + index as u128),
            displayData: FWPM_DISPLAY_DATA0 {
                name: name.as_mut_ptr(),
                description: null_mut(),
            },
            providerKey: &mut pkey,
            layerKey: match flt.family {
                Family::V4 => FWPM_LAYER_ALE_AUTH_CONNECT_V4,
                Family::V6 => FWPM_LAYER_ALE_AUTH_CONNECT_V6,
            },
            subLayerKey: SUBLAYER_KEY,
            weight: FWP_VALUE0 {
                r#type: FWP_UINT8,
                Anonymous: FWP_VALUE0_0 { uint8: flt.weight },
            },
            numFilterConditions: conds.len() as u32,
            filterCondition: if conds.is_empty() {
                null_mut()
            } else {
                conds.as_mut_ptr()
            },
            action: FWPM_ACTION0 {
                r#type: match flt.action {
                    Action::Permit => FWP_ACTION_PERMIT,
                    Action::Block => FWP_ACTION_BLOCK,
                },
                ..Default::default()
            },
            ..Default::default()
        };
        let mut id = 0u64;
        // SAFETY: filter, its conditions and everything they point at (store, name,
        // pkey) live until the call returns.
        let rc = unsafe { FwpmFilterAdd0(self.0, &filter, null_mut(), &mut id) };
        check(&format!("add filter {:?}", flt.name), rc)
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        // SAFETY: a handle from FwpmEngineOpen0.
        unsafe { FwpmEngineClose0(self.0) };
    }
}

/// Owns what the conditions' unions point at. Boxed so the addresses stay put while the
/// vectors grow (a Vec<T> would move its elements and leave the pointers dangling).
#[derive(Default)]
#[allow(clippy::vec_box)]
struct CondStore {
    v4: Vec<Box<FWP_V4_ADDR_AND_MASK>>,
    v6: Vec<Box<FWP_V6_ADDR_AND_MASK>>,
    u64s: Vec<Box<u64>>,
    ranges: Vec<Box<FWP_RANGE0>>,
    /// App ids from FwpmGetAppIdFromFileName0 (freed with FwpmFreeMemory0 on drop).
    blobs: Vec<*mut FWP_BYTE_BLOB>,
}

impl Drop for CondStore {
    fn drop(&mut self) {
        for b in self.blobs.drain(..) {
            let mut p = b;
            // SAFETY: allocated by FwpmGetAppIdFromFileName0.
            unsafe { FwpmFreeMemory0(&mut p as *mut _ as *mut *mut core::ffi::c_void) };
        }
    }
}

impl CondStore {
    fn condition(&mut self, c: &Condition) -> Result<FWPM_FILTER_CONDITION0, Error> {
        let mut out = FWPM_FILTER_CONDITION0 {
            matchType: FWP_MATCH_EQUAL,
            ..Default::default()
        };
        match c {
            Condition::Loopback => {
                out.fieldKey = FWPM_CONDITION_FLAGS;
                out.matchType = FWP_MATCH_FLAGS_ALL_SET;
                out.conditionValue.r#type = FWP_UINT32;
                out.conditionValue.Anonymous.uint32 = FWP_CONDITION_FLAG_IS_LOOPBACK;
            }
            Condition::Interface(alias) => {
                let mut b = Box::new(luid(alias)?);
                out.fieldKey = FWPM_CONDITION_IP_LOCAL_INTERFACE;
                out.conditionValue.r#type = FWP_UINT64;
                out.conditionValue.Anonymous.uint64 = &mut *b;
                self.u64s.push(b);
            }
            Condition::RemoteAddr(IpNet::V4(n)) => {
                let mut b = Box::new(FWP_V4_ADDR_AND_MASK {
                    addr: u32::from(n.network()),
                    mask: u32::from(n.netmask()),
                });
                out.fieldKey = FWPM_CONDITION_IP_REMOTE_ADDRESS;
                out.conditionValue.r#type = FWP_V4_ADDR_MASK;
                out.conditionValue.Anonymous.v4AddrMask = &mut *b;
                self.v4.push(b);
            }
            Condition::RemoteAddr(IpNet::V6(n)) => {
                let mut b = Box::new(FWP_V6_ADDR_AND_MASK {
                    addr: n.network().octets(),
                    prefixLength: n.prefix_len(),
                });
                out.fieldKey = FWPM_CONDITION_IP_REMOTE_ADDRESS;
                out.conditionValue.r#type = FWP_V6_ADDR_MASK;
                out.conditionValue.Anonymous.v6AddrMask = &mut *b;
                self.v6.push(b);
            }
            Condition::RemotePort(p) | Condition::LocalPort(p) => {
                out.fieldKey = if matches!(c, Condition::RemotePort(_)) {
                    FWPM_CONDITION_IP_REMOTE_PORT
                } else {
                    FWPM_CONDITION_IP_LOCAL_PORT
                };
                out.conditionValue.r#type = FWP_UINT16;
                out.conditionValue.Anonymous.uint16 = *p;
            }
            Condition::Protocol(n) => {
                out.fieldKey = FWPM_CONDITION_IP_PROTOCOL;
                out.conditionValue.r#type = FWP_UINT8;
                out.conditionValue.Anonymous.uint8 = *n;
            }
            Condition::App(exe) => {
                let w = wide(exe);
                let mut blob: *mut FWP_BYTE_BLOB = null_mut();
                // SAFETY: w is NUL-terminated; blob receives WFP-owned memory (freed in Drop).
                let rc = unsafe { FwpmGetAppIdFromFileName0(w.as_ptr(), &mut blob) };
                check(&format!("app id of {exe}"), rc)?;
                self.blobs.push(blob);
                out.fieldKey = FWPM_CONDITION_ALE_APP_ID;
                out.conditionValue.r#type = FWP_BYTE_BLOB_TYPE;
                out.conditionValue.Anonymous.byteBlob = blob;
            }
            Condition::IcmpTypes(lo, hi) => {
                let v = |x: u8| FWP_VALUE0 {
                    r#type: FWP_UINT16,
                    Anonymous: FWP_VALUE0_0 {
                        uint16: u16::from(x),
                    },
                };
                let mut b = Box::new(FWP_RANGE0 {
                    valueLow: v(*lo),
                    valueHigh: v(*hi),
                });
                // The ICMP type is carried in the local-port field (FWPM_CONDITION_ICMP_TYPE).
                out.fieldKey = FWPM_CONDITION_IP_LOCAL_PORT;
                out.matchType = FWP_MATCH_RANGE;
                out.conditionValue.r#type = FWP_RANGE_TYPE;
                out.conditionValue.Anonymous.rangeValue = &mut *b;
                self.ranges.push(b);
            }
        }
        Ok(out)
    }
}

fn luid(alias: &str) -> Result<u64, Error> {
    let w = wide(alias);
    let mut l = NET_LUID_LH { Value: 0 };
    // SAFETY: w is NUL-terminated; l receives the LUID.
    let rc = unsafe { ConvertInterfaceAliasToLuid(w.as_ptr(), &mut l) };
    check(&format!("find the interface {alias:?}"), rc)?;
    // SAFETY: Value is the whole union.
    Ok(unsafe { l.Value })
}

/// Replaces our filters with `filters` atomically.
fn apply_filters(filters: &[WfpFilter]) -> Result<(), Error> {
    if filters.len() > MAX_FILTERS {
        return Err(Error::Firewall {
            what: format!("{} filters (at most {MAX_FILTERS})", filters.len()),
            source: std::io::Error::other("too many LAN prefixes or servers"),
        });
    }
    let engine = Engine::open()?;
    engine.transaction(|e| {
        e.ensure_provider_and_sublayer()?;
        e.delete_filters()?;
        for (i, flt) in filters.iter().enumerate() {
            e.add(i, flt)?;
        }
        Ok(())
    })
}

/// Removes our filters, sublayer and provider (absent ones are fine).
fn remove_all() -> Result<(), Error> {
    let engine = Engine::open()?;
    engine.transaction(|e| {
        e.delete_filters()?;
        if e.sublayer_exists()? {
            // SAFETY: the key outlives the call.
            check("delete the sublayer", unsafe {
                FwpmSubLayerDeleteByKey0(e.0, &SUBLAYER_KEY)
            })?;
        }
        if e.provider_exists()? {
            // SAFETY: the key outlives the call.
            check("delete the provider", unsafe {
                FwpmProviderDeleteByKey0(e.0, &PROVIDER_KEY)
            })?;
        }
        Ok(())
    })
}

/// Whether our sublayer exists (the kill switch is, or was left, in place).
fn sublayer_present() -> Result<bool, Error> {
    Engine::open()?.sublayer_exists()
}

/// WFP filters in our own provider and sublayer (the table name is not used: the GUIDs
/// name them).
#[derive(Debug)]
pub(super) struct Backend;

impl super::Backend for Backend {
    fn open(_: &FirewallOptions) -> Result<Self, Error> {
        Ok(Self)
    }

    fn apply(&mut self, policy: &FirewallPolicy) -> Result<(), Error> {
        // Only the helper itself may reach the servers around the tunnel.
        let exe = std::env::current_exe().ok();
        let exe = exe.as_ref().and_then(|p| p.to_str());
        apply_filters(&wfp_rules::wfp_rules(policy, exe))
    }

    fn remove(&mut self) -> Result<(), Error> {
        remove_all()
    }

    fn is_present(&self) -> Result<bool, Error> {
        sublayer_present()
    }
}
