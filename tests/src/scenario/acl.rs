//! Stateful ACLs: pod2 takes connections from pod1 only; its replies and its
//! own connections pass, everyone else to pod2 is dropped.

use super::{udp_between, Case, Expect, Scenario, Topo, Want};
use switchyard_southbound::pb::{self, nb_op::Op};
use switchyard_southbound::DropReason;

fn acl(priority: u32, m: &str, action: &str) -> Op {
    Op::AclAdd(pb::Acl {
        switch_name: "ls0".into(),
        direction: "to-lport".into(),
        priority,
        r#match: m.into(),
        action: action.into(),
        name: String::new(),
    })
}

/// Three pods on ls0; to-lport ACLs on pod2.
pub fn scenario() -> Scenario {
    let topo = Topo::switch(3);
    let p = topo.endpoints();
    let exact = |a: usize, b: usize, sport: u16, dport: u16, tag: &'static str| {
        let f = udp_between(&topo, a, b, sport, dport, tag);
        Case {
            name: tag,
            from: a,
            frame: f.clone(),
            expect: Expect::Delivered(vec![(b, Want::exact(f))]),
        }
    };
    let cases = vec![
        exact(0, 1, 40000, 7000, "acl admitted client"),
        exact(1, 0, 7000, 40000, "acl reply to the admitted client"),
        Case {
            name: "acl refused client",
            from: 2,
            frame: udp_between(&topo, 2, 1, 40000, 7000, "acl refused client"),
            expect: Expect::Dropped(DropReason::AclDrop),
        },
        exact(2, 0, 40000, 7000, "acl others are not filtered"),
        exact(1, 2, 41000, 7000, "acl the server's own connection"),
        exact(
            2,
            1,
            7000,
            41000,
            "acl the reply to the server's connection",
        ),
    ];
    let pod2 = &p[1].lport;
    Scenario {
        name: "acl",
        topo,
        config: vec![
            acl(
                100,
                &format!("outport == \"{pod2}\" && ip4.src == {}", p[0].ip),
                "allow-related",
            ),
            acl(10, &format!("outport == \"{pod2}\" && ip4"), "drop"),
        ],
        cases,
        spread: Vec::new(),
    }
}
