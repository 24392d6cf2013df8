//! The geometry of a 2-d convolution, shared by [`Op::Conv2d`],
//! [`Op::Conv2dInputGrad`] and [`Op::Conv2dWeightGrad`] (and so by
//! ConvTranspose2d, whose forward is a convolution's input gradient).
//!
//! [`Op::Conv2d`]: super::Op::Conv2d
//! [`Op::Conv2dInputGrad`]: super::Op::Conv2dInputGrad
//! [`Op::Conv2dWeightGrad`]: super::Op::Conv2dWeightGrad

use super::{Activation, Slice};

/// `y = conv(x, w)` in PyTorch's layout (NCHW, no dilation, no groups):
/// x `[batch, in_ch, in_h, in_w]`, w `[out_ch, in_ch, kernel.0, kernel.1]`,
/// y `[batch, out_ch, out_h, out_w]`, and per axis
/// `out = ⌊(in + 2·pad − kernel) / stride⌋ + 1`:
///
/// `y[b,o,p,q] = Σ_{c,i,j} x[b, c, p·stride.0 + i − pad.0, q·stride.1 + j − pad.1] · w[o,c,i,j]`
///
/// with x zero outside the image. A ConvTranspose2d with `output_padding`
/// is the input gradient of the convolution whose `in` is its (larger)
/// output: the floor leaves room for `output_padding < stride`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvGeom {
    pub batch: usize,
    pub in_ch: usize,
    pub in_h: usize,
    pub in_w: usize,
    pub out_ch: usize,
    pub out_h: usize,
    pub out_w: usize,
    /// (height, width) of the kernel, the stride and the zero padding.
    pub kernel: (usize, usize),
    pub stride: (usize, usize),
    pub pad: (usize, usize),
}

impl ConvGeom {
    /// The geometry of a convolution of `[batch, in_ch, in_h, in_w]` images,
    /// the output size following from the kernel, stride and padding (None
    /// when the kernel does not fit the padded image or the stride is 0).
    pub fn conv(
        [batch, in_ch, in_h, in_w]: [usize; 4],
        out_ch: usize,
        kernel: (usize, usize),
        stride: (usize, usize),
        pad: (usize, usize),
    ) -> Option<ConvGeom> {
        let out = |n: usize, k: usize, s: usize, p: usize| {
            (s > 0 && n + 2 * p >= k).then(|| (n + 2 * p - k) / s + 1)
        };
        Some(ConvGeom {
            batch,
            in_ch,
            in_h,
            in_w,
            out_ch,
            out_h: out(in_h, kernel.0, stride.0, pad.0)?,
            out_w: out(in_w, kernel.1, stride.1, pad.1)?,
            kernel,
            stride,
            pad,
        })
    }

    /// The geometry of `ConvTranspose2d(in_ch → out_ch)` on `[batch, in_ch,
    /// h, w]` inputs: the convolution (from `out_ch` to `in_ch` channels) whose
    /// input gradient it is, with input `(h − 1)·stride − 2·pad + kernel +
    /// output_padding` per axis (None when that is not positive or
    /// `output_padding ≥ stride`).
    pub fn transposed(
        [batch, in_ch, h, w]: [usize; 4],
        out_ch: usize,
        kernel: (usize, usize),
        stride: (usize, usize),
        pad: (usize, usize),
        output_padding: (usize, usize),
    ) -> Option<ConvGeom> {
        let size = |n: usize, k: usize, s: usize, p: usize, op: usize| {
            let full = (n.checked_sub(1)? * s + k + op).checked_sub(2 * p)?;
            (op < s && full > 0).then_some(full)
        };
        let geom = ConvGeom::conv(
            [
                batch,
                out_ch,
                size(h, kernel.0, stride.0, pad.0, output_padding.0)?,
                size(w, kernel.1, stride.1, pad.1, output_padding.1)?,
            ],
            in_ch,
            kernel,
            stride,
            pad,
        )?;
        (geom.out_h == h && geom.out_w == w).then_some(geom)
    }

    /// Elements of x (the convolution's input).
    pub fn x_len(&self) -> usize {
        self.batch * self.in_ch * self.in_h * self.in_w
    }

    /// Elements of y (the convolution's output).
    pub fn y_len(&self) -> usize {
        self.batch * self.out_ch * self.out_h * self.out_w
    }

    /// Elements of w.
    pub fn w_len(&self) -> usize {
        self.out_ch * self.taps()
    }

    /// Weights per output channel: `in_ch · kernel.0 · kernel.1`.
    pub fn taps(&self) -> usize {
        self.in_ch * self.kernel.0 * self.kernel.1
    }

    /// Multiply-adds of the forward (and of each gradient).
    pub fn macs(&self) -> usize {
        self.y_len() * self.taps()
    }

    /// Whether the sizes agree: every extent positive, strides positive, the
    /// kernel inside the padded input, and the output size the formula's.
    pub fn check(&self) -> Result<(), String> {
        let extents = [
            ("batch", self.batch),
            ("in_ch", self.in_ch),
            ("in_h", self.in_h),
            ("in_w", self.in_w),
            ("out_ch", self.out_ch),
            ("kernel height", self.kernel.0),
            ("kernel width", self.kernel.1),
            ("stride height", self.stride.0),
            ("stride width", self.stride.1),
        ];
        if let Some((name, _)) = extents.iter().find(|(_, v)| *v == 0) {
            return Err(format!("convolution with {name} 0"));
        }
        let want = ConvGeom::conv(
            [self.batch, self.in_ch, self.in_h, self.in_w],
            self.out_ch,
            self.kernel,
            self.stride,
            self.pad,
        )
        .ok_or_else(|| {
            format!(
                "a {}×{} kernel is larger than the {}×{} input padded by {:?}",
                self.kernel.0, self.kernel.1, self.in_h, self.in_w, self.pad
            )
        })?;
        if (want.out_h, want.out_w) != (self.out_h, self.out_w) {
            return Err(format!(
                "output {}×{}, but a {}×{} input gives {}×{}",
                self.out_h, self.out_w, self.in_h, self.in_w, want.out_h, want.out_w
            ));
        }
        Ok(())
    }
}

/// What a convolution kernel does with each sum `v` it computes, at output
/// element `e` of channel `c`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ConvEpilogue {
    /// `act(v + bias[c])`, or `act(v)` without a bias.
    BiasAct {
        bias: Option<Slice>,
        act: Activation,
    },
    /// `v · act'(y[e])`, `y` the output of the activation of the layer the
    /// gradient flows into (laid out as the kernel's output).
    ActGrad { y: Slice, act: Activation },
}

impl ConvEpilogue {
    /// The slice the epilogue reads, if any (to move it with its op's).
    pub fn slice_mut(&mut self) -> Option<&mut Slice> {
        match self {
            ConvEpilogue::BiasAct { bias, .. } => bias.as_mut(),
            ConvEpilogue::ActGrad { y, .. } => Some(y),
        }
    }
}

impl ConvEpilogue {
    /// No bias, identity: the raw sums.
    pub const NONE: ConvEpilogue = ConvEpilogue::BiasAct {
        bias: None,
        act: Activation::Identity,
    };

    /// The slice it reads, if any.
    pub fn reads(&self) -> Option<Slice> {
        match *self {
            ConvEpilogue::BiasAct { bias, .. } => bias,
            ConvEpilogue::ActGrad { y, .. } => Some(y),
        }
    }

    /// Its checks against an output of `len` elements in `channels` channels.
    pub fn check(&self, len: usize, channels: usize) -> Result<(), String> {
        match *self {
            ConvEpilogue::BiasAct { bias: Some(b), .. } if b.len != channels => Err(format!(
                "bias has {} elements for {channels} channels",
                b.len
            )),
            ConvEpilogue::ActGrad { y, .. } if y.len != len => Err(format!(
                "the activation's output has {} elements for an output of {len}",
                y.len
            )),
            _ => Ok(()),
        }
    }
}
