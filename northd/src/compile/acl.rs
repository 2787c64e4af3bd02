//! ACLs compiled into the stateful stages `ls_in_acl` (from-lport) and
//! `ls_out_acl` (to-lport): conntrack's verdicts first (invalid, blocked,
//! replies), then each ACL for new and for established packets of the
//! originating direction, then the defaults.

use crate::compile::flows::{drop, next, Lflows, M};
use crate::nb::acl::{parse_match, Val, BASE, ND_AND_MLD};
use crate::nb::Nb;
use switchyard_southbound::field::ct;
use switchyard_southbound::pb::{self, action::Kind};
use switchyard_southbound::{DropReason, Field, Stage};

/// `ct_mark` bit an ACL sets on a connection it cut (OVN's `ct_mark.blocked`):
/// the connection's packets are dropped in both directions until an ACL
/// allows its originator's packets again.
pub const CT_MARK_BLOCKED: u32 = 1;

/// `ct_commit { ct_mark.blocked = V; }`: committing a new connection (V = 0),
/// re-admitting an established one (0), or cutting it (1).
fn commit_blocked(blocked: bool) -> pb::Action {
    crate::compile::flows::action(Kind::CtCommit(pb::CtCommit {
        mark: if blocked { CT_MARK_BLOCKED } else { 0 },
        mark_mask: CT_MARK_BLOCKED,
        ..Default::default()
    }))
}

/// The stateful stages of switch `ls` (datapath `dp`) when it has ACLs; a
/// switch without any keeps the stages' plain `next` and is not tracked.
///
/// The ACLs decide every packet of the originating direction, new or
/// established (OVN re-checks established traffic the same way), so a policy
/// change reaches connections already open: an established packet that an
/// ACL now drops marks its connection blocked, and the replies of a blocked
/// connection are dropped too. Replies and related packets of connections
/// that are not blocked pass whatever the ACLs say.
pub fn compile_acls(nb: &Nb, ls: &str, dp: u32, lf: &mut Lflows) {
    if nb.acls_of(ls).next().is_none() {
        return;
    }
    let state = |bits: u8, mask: u8| M::any().field(Field::CtState, bits.into(), mask.into());
    // Not established and not related: a new connection, or a packet
    // conntrack does not follow (ct_state 0: ARP, other protocols).
    let fresh = || state(0, ct::EST | ct::REL);
    // A later packet of the direction that opened the connection.
    let onward = || state(ct::TRK | ct::EST, ct::TRK | ct::EST | ct::RPL | ct::REL);
    let blocked = |m: M| {
        m.field(
            Field::CtMark,
            CT_MARK_BLOCKED.into(),
            CT_MARK_BLOCKED.into(),
        )
    };
    for stage in [Stage::LsInAcl, Stage::LsOutAcl] {
        lf.add(
            dp,
            stage,
            65535,
            state(ct::TRK | ct::INV, ct::TRK | ct::INV),
            vec![drop(DropReason::CtInvalid)],
        );
        // Neighbour discovery and MLD pass whatever the ACLs say (as OVN):
        // a default deny on `ip` must not cut IPv6 off its neighbours.
        // Port security has already decided who may send which.
        for ty in ND_AND_MLD {
            lf.add(dp, stage, 65535, M::any().icmp6(ty), vec![next()]);
        }
        // Replies and ICMP errors of a connection an ACL cut stay cut.
        for bit in [ct::RPL, ct::REL] {
            lf.add(
                dp,
                stage,
                65535,
                blocked(state(ct::TRK | bit, ct::TRK | bit)),
                vec![drop(DropReason::AclBlocked)],
            );
        }
        // Replies and ICMP errors of allowed connections pass.
        lf.add(
            dp,
            stage,
            65534,
            state(ct::TRK | ct::EST | ct::RPL, ct::TRK | ct::EST | ct::RPL),
            vec![next()],
        );
        lf.add(
            dp,
            stage,
            65534,
            state(ct::TRK | ct::REL, ct::TRK | ct::REL),
            vec![next()],
        );
        // What no ACL decides is allowed, and committed so its replies pass
        // the other direction's ACLs (as OVN: default allow; a default deny
        // is a low-priority drop ACL).
        lf.add(dp, stage, 1, fresh(), vec![commit_blocked(false), next()]);
        lf.add(dp, stage, 1, onward(), vec![commit_blocked(false), next()]);
    }
    for a in nb.acls_of(ls) {
        let stage = if a.direction == "from-lport" {
            Stage::LsInAcl
        } else {
            Stage::LsOutAcl
        };
        let drops = a.action == "drop";
        let Ok(alts) = parse_match(&a.r#match) else {
            continue; // validated on write
        };
        'conj: for conj in alts {
            for (start, established) in [(fresh(), false), (onward(), true)] {
                let mut m = start;
                for (f, v) in &conj {
                    m = match v {
                        Val::Num(value, mask) => m.field(*f, *value, mask & f.full_mask()),
                        Val::Port(name) => {
                            // A port deleted since: this combination matches nothing.
                            let Some(p) = nb.ports_of(ls).find(|p| &p.name == name) else {
                                continue 'conj;
                            };
                            if *f == Field::Inport {
                                m.inport(p.tunnel_key, name)
                            } else {
                                m.outport(p.tunnel_key, name)
                            }
                        }
                    };
                }
                let actions = match (drops, established) {
                    (false, _) => vec![commit_blocked(false), next()],
                    (true, false) => vec![drop(DropReason::AclDrop)],
                    // An open connection the policy now denies: cut it.
                    (true, true) => vec![commit_blocked(true), drop(DropReason::AclDrop)],
                };
                lf.add(dp, stage, BASE + a.priority, m, actions);
            }
        }
    }
}
