//! The slow path: a packet's flow key walked through the logical pipelines of the
//! translated tables, stage by stage, to a verdict the caches can remember. It
//! allocates nothing itself (the caller owns the output list) and can record a
//! trace of every stage it crossed.

use crate::flow::{FlowKey, Meta};
use crate::tables::{Act, DpTables, PortTarget, StageTable, Tables};
use switchyard_southbound::{DropReason, MC_FIRST_KEY};

/// What the datapath does with a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Drop(DropReason),
    /// Transmit a copy to every slot in the caller's output list.
    Output,
    /// Answer an ARP request in place with this MAC, back out the input port.
    ArpReply(u64),
}

/// One step of a trace: a stage and the flow that matched there.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TraceStep {
    pub datapath: String,
    pub pipeline: &'static str,
    pub stage: &'static str,
    pub table: u32,
    pub priority: Option<u32>,
    pub matched: Option<String>,
    pub actions: Option<String>,
    pub source: Option<String>,
    pub outport: Option<String>,
}

/// Runs `key` through the pipeline. Output slots are appended to `out`.
pub fn run(
    t: &Tables,
    key: &FlowKey,
    out: &mut Vec<u16>,
    mut trace: Option<&mut Vec<TraceStep>>,
) -> Verdict {
    out.clear();
    let Some(b) = t.slot(key.in_port) else {
        return Verdict::Drop(DropReason::UnknownInport);
    };
    let Some(dp) = t.datapaths.get(&b.datapath) else {
        return Verdict::Drop(DropReason::UnknownInport);
    };
    let mut meta = Meta {
        inport: b.port,
        outport: 0,
    };
    // Ingress.
    match walk(
        dp,
        &dp.ingress,
        key,
        &mut meta,
        t,
        b.datapath,
        trace.as_deref_mut(),
    ) {
        Step::Output => {}
        Step::Drop(r) => return Verdict::Drop(r),
        Step::ArpReply(mac) => return Verdict::ArpReply(mac),
    }
    // Egress, once per destination port.
    let mut last_drop = DropReason::NoL2Destination;
    let single = [meta.outport];
    let members: &[u32] = if meta.outport >= MC_FIRST_KEY {
        t.multicast
            .get(&(b.datapath, meta.outport))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    } else {
        &single
    };
    let multicast = meta.outport >= MC_FIRST_KEY;
    for &port in members {
        if port == meta.inport {
            if !multicast {
                last_drop = DropReason::LoopToInport;
            }
            continue;
        }
        let mut m = Meta {
            inport: meta.inport,
            outport: port,
        };
        match walk(
            dp,
            &dp.egress,
            key,
            &mut m,
            t,
            b.datapath,
            trace.as_deref_mut(),
        ) {
            Step::Output => match t.ports.get(&(b.datapath, port)) {
                Some(PortTarget::Local(slot)) => out.push(*slot),
                Some(PortTarget::Remote(_)) => last_drop = DropReason::RemotePort,
                _ => last_drop = DropReason::NoL2Destination,
            },
            Step::Drop(r) => last_drop = r,
            Step::ArpReply(_) => last_drop = DropReason::PipelineDrop,
        }
    }
    if out.is_empty() {
        Verdict::Drop(last_drop)
    } else {
        Verdict::Output
    }
}

enum Step {
    Output,
    Drop(DropReason),
    ArpReply(u64),
}

fn walk(
    dp: &DpTables,
    stages: &[StageTable],
    key: &FlowKey,
    meta: &mut Meta,
    t: &Tables,
    dp_key: u32,
    mut trace: Option<&mut Vec<TraceStep>>,
) -> Step {
    for st in stages {
        let hit = st
            .classifier
            .lookup(key, meta)
            .map(|id| &st.flows[id as usize]);
        if let Some(tr) = trace.as_deref_mut() {
            tr.push(TraceStep {
                datapath: dp.name.clone(),
                pipeline: st.stage.pipeline().as_str(),
                stage: st.stage.name(),
                table: st.stage.table(),
                priority: hit.map(|f| f.priority),
                matched: hit
                    .map(|f| switchyard_southbound::display::matches_text(&f.lflow.matches)),
                actions: hit
                    .map(|f| switchyard_southbound::display::actions_text(&f.lflow.actions)),
                source: hit.map(|f| f.lflow.source.clone()),
                outport: (meta.outport != 0).then(|| t.port_name(dp_key, meta.outport).to_string()),
            });
        }
        let Some(flow) = hit else {
            return Step::Drop(DropReason::NoFlow);
        };
        let mut next = false;
        for a in &flow.actions {
            match *a {
                Act::Next => {
                    next = true;
                    break;
                }
                Act::Output => return Step::Output,
                Act::SetOutport(p) => meta.outport = p,
                Act::Drop(r) => return Step::Drop(r),
                Act::ArpReply(mac) => return Step::ArpReply(mac),
            }
        }
        if !next {
            // A flow whose actions neither continue nor output drops, as in OVN.
            return Step::Drop(DropReason::PipelineDrop);
        }
    }
    Step::Drop(DropReason::NoFlow)
}
