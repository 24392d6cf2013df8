//! Scalar readback that does not stall training.
//!
//! Losses and D outputs are copied into a small ring of staging buffers in the
//! same command buffer as the step that produced them; mapping is requested
//! after the submit, and [`ScalarReadback::collect`] hands back whatever has
//! arrived without waiting. The GPU keeps running the following steps while a
//! slot is in flight; if every slot is busy, the ring grows by one slot
//! rather than blocking the step or losing the report (the last step's
//! report must reach the loss log and the run's summary).

use std::sync::{Arc, Mutex};

use super::context::{GpuContext, GpuError};
use crate::plan::Slice;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SlotState {
    Free,
    /// Copies recorded, submit not yet done.
    Recorded,
    /// Mapping requested.
    Mapping,
    Ready,
    Failed,
}

struct Slot {
    buffer: wgpu::Buffer,
    state: Arc<Mutex<SlotState>>,
    tag: u64,
}

/// A ring of staging buffers for a fixed list of small slices.
pub struct ScalarReadback {
    watched: Vec<Slice>,
    words: usize,
    slots: Vec<Slot>,
    /// The newest tag handed back so far.
    delivered: Option<u64>,
    /// To add a slot when every one is in flight.
    device: wgpu::Device,
}

fn new_slot(device: &wgpu::Device, words: usize) -> Slot {
    Slot {
        buffer: device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("scalar readback"),
            size: (words.max(1) * 4) as u64,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        }),
        state: Arc::new(Mutex::new(SlotState::Free)),
        tag: 0,
    }
}

impl ScalarReadback {
    /// Watches `slices` (read together as one report) with `depth` reports in flight at most.
    pub fn new(ctx: &GpuContext, watched: Vec<Slice>, depth: usize) -> ScalarReadback {
        let words: usize = watched.iter().map(|s| s.len).sum();
        let slots = (0..depth.max(1))
            .map(|_| new_slot(&ctx.device, words))
            .collect();
        ScalarReadback {
            watched,
            words,
            slots,
            delivered: None,
            device: ctx.device.clone(),
        }
    }

    fn state(slot: &Slot) -> SlotState {
        *slot.state.lock().expect("readback state poisoned")
    }

    /// Records copies of the watched slices into a free slot, labelled `tag`
    /// (a new slot when every one is still in flight); `buffers` are the
    /// plan's device buffers, indexed by [`crate::plan::BufferId`].
    pub fn record(
        &mut self,
        encoder: &mut wgpu::CommandEncoder,
        buffers: &[wgpu::Buffer],
        tag: u64,
    ) {
        let free = self
            .slots
            .iter()
            .position(|s| Self::state(s) == SlotState::Free);
        let at = free.unwrap_or_else(|| {
            self.slots.push(new_slot(&self.device, self.words));
            self.slots.len() - 1
        });
        let slot = &mut self.slots[at];
        let mut at = 0u64;
        for s in &self.watched {
            let bytes = (s.len * 4) as u64;
            encoder.copy_buffer_to_buffer(
                &buffers[s.buffer.0],
                (s.offset * 4) as u64,
                &slot.buffer,
                at,
                bytes,
            );
            at += bytes;
        }
        slot.tag = tag;
        *slot.state.lock().expect("readback state poisoned") = SlotState::Recorded;
    }

    /// Requests mapping of the slots recorded since the last call; call after submit.
    pub fn after_submit(&mut self) {
        for slot in &mut self.slots {
            if Self::state(slot) != SlotState::Recorded {
                continue;
            }
            *slot.state.lock().expect("readback state poisoned") = SlotState::Mapping;
            let state = slot.state.clone();
            slot.buffer.map_async(wgpu::MapMode::Read, .., move |r| {
                *state.lock().expect("readback state poisoned") = match r {
                    Ok(()) => SlotState::Ready,
                    Err(_) => SlotState::Failed,
                };
            });
        }
    }

    /// Blocks until no slot is still mapping. One wait for the device is not
    /// always enough: when another thread polls the same device (tests share
    /// one), that thread may have taken our map callback and not yet run it
    /// when our wait returns, so we poll again until the callback has run.
    fn wait_for_mappings(&self, ctx: &GpuContext) -> Result<(), GpuError> {
        const PATIENCE: std::time::Duration = std::time::Duration::from_secs(60);
        let start = std::time::Instant::now();
        loop {
            ctx.device
                .poll(wgpu::PollType::wait_indefinitely())
                .map_err(|e| GpuError::Readback(e.to_string()))?;
            let mapping = self
                .slots
                .iter()
                .any(|s| Self::state(s) == SlotState::Mapping);
            if !mapping {
                return Ok(());
            }
            if start.elapsed() > PATIENCE {
                return Err(GpuError::Readback(format!(
                    "a staging buffer was still mapping after {} s",
                    PATIENCE.as_secs()
                )));
            }
            std::thread::sleep(std::time::Duration::from_micros(100));
        }
    }

    /// Reports that have arrived, oldest first, as (tag, values of the watched
    /// slices concatenated), each newer than every report returned before:
    /// mappings can complete out of submission order, and a report that
    /// arrives after a newer one is dropped (the newer one supersedes it).
    /// With `wait`, blocks until every report in flight is in.
    pub fn collect(
        &mut self,
        ctx: &GpuContext,
        wait: bool,
    ) -> Result<Vec<(u64, Vec<f32>)>, GpuError> {
        if wait {
            self.wait_for_mappings(ctx)?;
        } else {
            ctx.device
                .poll(wgpu::PollType::Poll)
                .map_err(|e| GpuError::Readback(e.to_string()))?;
        }
        ctx.check_lost()?;
        let mut out = Vec::new();
        for slot in &mut self.slots {
            match Self::state(slot) {
                SlotState::Ready => {
                    let view = slot
                        .buffer
                        .get_mapped_range(..)
                        .map_err(|e| GpuError::Readback(e.to_string()))?;
                    let values: Vec<f32> = bytemuck::cast_slice(&view)[..self.words].to_vec();
                    drop(view);
                    slot.buffer.unmap();
                    out.push((slot.tag, values));
                    *slot.state.lock().expect("readback state poisoned") = SlotState::Free;
                }
                SlotState::Failed => {
                    *slot.state.lock().expect("readback state poisoned") = SlotState::Free;
                    return Err(GpuError::Readback("mapping a staging buffer failed".into()));
                }
                _ => {}
            }
        }
        out.sort_by_key(|(tag, _)| *tag);
        out.retain(|(tag, _)| self.delivered.is_none_or(|d| *tag > d));
        if let Some((tag, _)) = out.last() {
            self.delivered = Some(*tag);
        }
        Ok(out)
    }
}
