//! Stateful ACLs: pod2 takes connections from pod1 only; its replies and its
//! own connections pass, everyone else to pod2 is dropped.

use super::{forwarded, udp_between, Case, Expect, Scenario, Topo};
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
    let cases = vec![
        forwarded(&topo, "acl admitted client", 0, 1, 40000, 7000),
        forwarded(&topo, "acl reply to the admitted client", 1, 0, 7000, 40000),
        Case {
            name: "acl refused client",
            from: 2,
            frame: udp_between(&topo, 2, 1, 40000, 7000, "acl refused client"),
            expect: Expect::Dropped(DropReason::AclDrop),
        },
        forwarded(&topo, "acl others are not filtered", 2, 0, 40000, 7000),
        forwarded(&topo, "acl the server's own connection", 1, 2, 41000, 7000),
        forwarded(
            &topo,
            "acl the reply to the server's connection",
            2,
            1,
            7000,
            41000,
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
