// Buffers of one forward/backward pass, allocated once for a capacity of M = B·T rows and reused by every later pass
// that fits (Reshape): packed micro-batches change T on nearly every step, and reallocating every activation each
// step would churn the heap. Each buffer is exposed as a span of exactly the current pass's rows.
// With activation checkpointing only each layer's input is kept; the layer's other activations live in one
// shared set that the backward refills by recomputing the layer. Shapes use M = B·T rows.
namespace LoraSharp.Models.Llama;

/// <summary>Activations and gradient scratch for batch shapes of up to <see cref="Capacity"/> rows.</summary>
public sealed class LlamaActivations
{
    /// <summary>Saved activations of one layer (spans of the owner's current M rows).</summary>
    public sealed class Layer
    {
        private readonly LlamaActivations _owner;
        private readonly int _c, _h, _qd, _kd, _nh, _nkv;
        internal readonly float[] _rstd1, _xn1, _q, _k, _v, _att, _lse, _xMid, _rstd2, _xn2, _gate, _up;
        internal readonly float[] _qRaw, _kRaw, _rstdQ, _rstdK;   // q/k before their per-head norm (qwen3); empty otherwise
        internal readonly float[] _attnOut, _rstdAttnOut, _ffnOut, _rstdFfnOut;   // gemma's branch outputs before their norms

        internal Layer(LlamaActivations owner, int M, LlamaConfig c)
        {
            _owner = owner;
            _c = c.HiddenSize; _h = c.IntermediateSize; _nh = c.NumAttentionHeads;
            _qd = c.NumAttentionHeads * c.HeadDim; _kd = c.NumKeyValueHeads * c.HeadDim;
            _rstd1 = new float[M]; _xn1 = new float[M * _c];
            _q = new float[M * _qd]; _k = new float[M * _kd]; _v = new float[M * _kd];
            _att = new float[M * _qd]; _lse = new float[M * _nh];
            _xMid = new float[M * _c]; _rstd2 = new float[M]; _xn2 = new float[M * _c];
            _gate = new float[M * _h]; _up = new float[M * _h];
            _nkv = c.NumKeyValueHeads;
            bool qk = c.QkNorm;
            _qRaw = qk ? new float[M * _qd] : []; _kRaw = qk ? new float[M * _kd] : [];
            _rstdQ = qk ? new float[M * _nh] : []; _rstdK = qk ? new float[M * _nkv] : [];
            bool sw = c.SandwichNorms;
            _attnOut = sw ? new float[M * _c] : []; _ffnOut = sw ? new float[M * _c] : [];
            _rstdAttnOut = sw ? new float[M] : []; _rstdFfnOut = sw ? new float[M] : [];
        }

        private int M => _owner.M;
        public Span<float> Rstd1 => _rstd1.AsSpan(0, M);          // (M)
        public Span<float> Xn1 => _xn1.AsSpan(0, M * _c);         // (M, C)   input_layernorm output: input of q/k/v
        public Span<float> Q => _q.AsSpan(0, M * _qd);            // (M, NH*HS) after RoPE
        public Span<float> K => _k.AsSpan(0, M * _kd);            // (M, NKV*HS) after RoPE
        public Span<float> V => _v.AsSpan(0, M * _kd);            // (M, NKV*HS)
        public Span<float> Att => _att.AsSpan(0, M * _qd);        // (M, NH*HS) attention output: input of o_proj
        public Span<float> Lse => _lse.AsSpan(0, M * _nh);        // (B, NH, T) attention log-sum-exp
        public Span<float> XMid => _xMid.AsSpan(0, M * _c);       // (M, C)   residual after attention
        public Span<float> Rstd2 => _rstd2.AsSpan(0, M);          // (M)
        public Span<float> Xn2 => _xn2.AsSpan(0, M * _c);         // (M, C)   post_attention_layernorm output: input of gate/up
        public Span<float> Gate => _gate.AsSpan(0, M * _h);       // (M, H)
        public Span<float> Up => _up.AsSpan(0, M * _h);           // (M, H)
        public Span<float> QRaw => _qRaw.AsSpan(0, _qRaw.Length == 0 ? 0 : M * _qd);    // (M, NH*HS) q_proj output before q_norm (qwen3)
        public Span<float> KRaw => _kRaw.AsSpan(0, _kRaw.Length == 0 ? 0 : M * _kd);    // (M, NKV*HS) k_proj output before k_norm
        public Span<float> RstdQ => _rstdQ.AsSpan(0, _rstdQ.Length == 0 ? 0 : M * _nh);  // (M*NH) q_norm 1/rms per head
        public Span<float> RstdK => _rstdK.AsSpan(0, _rstdK.Length == 0 ? 0 : M * _nkv); // (M*NKV)
        public Span<float> AttnOut => _attnOut.AsSpan(0, _attnOut.Length == 0 ? 0 : M * _c);   // (M, C) o_proj output before post_attention_layernorm (gemma)
        public Span<float> RstdAttnOut => _rstdAttnOut.AsSpan(0, _rstdAttnOut.Length == 0 ? 0 : M);   // (M)
        public Span<float> FfnOut => _ffnOut.AsSpan(0, _ffnOut.Length == 0 ? 0 : M * _c);      // (M, C) down_proj output before post_feedforward_layernorm
        public Span<float> RstdFfnOut => _rstdFfnOut.AsSpan(0, _rstdFfnOut.Length == 0 ? 0 : M);      // (M)

        internal long FloatCount => (long)_rstd1.Length + _xn1.Length + _q.Length + _k.Length + _v.Length + _att.Length
                                    + _lse.Length + _xMid.Length + _rstd2.Length + _xn2.Length + _gate.Length + _up.Length
                                    + _qRaw.Length + _kRaw.Length + _rstdQ.Length + _rstdK.Length
                                    + _attnOut.Length + _rstdAttnOut.Length + _ffnOut.Length + _rstdFfnOut.Length;
    }

    /// <summary>The residual stream X[0..L] as spans of the current M rows.</summary>
    public sealed class Stream
    {
        private readonly LlamaActivations _owner;
        private readonly float[][] _x;
        private readonly int _c;

        internal Stream(LlamaActivations owner, int count, int M, int C)
        {
            _owner = owner;
            _c = C;
            _x = new float[count][];
            for (int l = 0; l < count; l++) _x[l] = new float[M * C];
        }

        /// <summary>X[l] (M, C).</summary>
        public Span<float> this[int l] => _x[l].AsSpan(0, _owner.M * _c);

        /// <summary>L + 1.</summary>
        public int Count => _x.Length;

        internal long FloatCount => _x.Sum(x => (long)x.Length);
    }

    private readonly int _c, _h, _qd, _kd, _fusedWidth;
    private readonly float[] _rstdF, _xnF, _hidden, _dx, _dxn, _dq, _dk, _dv, _dAtt, _dh, _dGate, _dUp;
    private readonly float[] _dqRaw, _dkRaw;   // gradients before the per-head q/k norm (qwen3); empty otherwise
    private readonly float[] _normed;           // gemma: a branch output after its norm, before the residual add
    private readonly float[] _fused;            // phi3: a fused projection's output or its gradient; empty otherwise
    private readonly int[] _positions, _targets;
    private readonly byte[] _keyMask;

    /// <summary>Allocates buffers for batch shape (B, T): a capacity of B·T rows.</summary>
    public LlamaActivations(LlamaConfig c, int B, int T, bool checkpointing, int maxRank)
    {
        int M = B * T;
        Capacity = M;
        MaxRank = maxRank;
        this.B = B;
        this.T = T;
        this.M = M;
        Checkpointing = checkpointing;
        int L = c.NumHiddenLayers, C = c.HiddenSize, H = c.IntermediateSize;
        int QD = c.NumAttentionHeads * c.HeadDim, KD = c.NumKeyValueHeads * c.HeadDim;
        _c = C; _h = H; _qd = QD; _kd = KD;
        X = new Stream(this, L + 1, M, C);
        Layers = new Layer[L];
        if (checkpointing)
        {
            var shared = new Layer(this, M, c);
            for (int l = 0; l < L; l++) Layers[l] = shared;
        }
        else
        {
            for (int l = 0; l < L; l++) Layers[l] = new Layer(this, M, c);
        }
        _rstdF = new float[M];
        _xnF = new float[M * C];
        _positions = new int[M];
        _targets = new int[M];
        _keyMask = new byte[M];
        _hidden = new float[M * H];
        _dx = new float[M * C];
        _dxn = new float[M * C];
        _dq = new float[M * QD];
        _dk = new float[M * KD];
        _dv = new float[M * KD];
        _dAtt = new float[M * QD];
        _dh = new float[M * H];
        _dGate = new float[M * H];
        _dUp = new float[M * H];
        _dqRaw = c.QkNorm ? new float[M * QD] : [];
        _dkRaw = c.QkNorm ? new float[M * KD] : [];
        _normed = c.SandwichNorms ? new float[M * C] : [];
        _fusedWidth = c.FusedProjections ? Math.Max(QD + 2 * KD, 2 * H) : 0;
        _fused = new float[M * _fusedWidth];
        int maxK = Math.Max(Math.Max(C, H), QD);
        // LoRA scratch: a dropout copy of an input (M·K) in the forward; dz (M·R) then u or du (M·K) in the backward.
        LoraScratch = new float[M * maxK + M * Math.Max(1, maxRank)];
    }

    /// <summary>Rows the buffers hold (the largest B·T they serve).</summary>
    public int Capacity { get; }
    /// <summary>The adapter rank the LoRA scratch was sized for.</summary>
    public int MaxRank { get; }

    /// <summary>Sets the shape of the next pass; B·T must not exceed <see cref="Capacity"/>. Every span then covers B·T rows.</summary>
    public void Reshape(int B, int T)
    {
        if ((long)B * T > Capacity) throw new ArgumentException($"Batch shape [{B}, {T}] needs {(long)B * T} rows but these activations hold {Capacity}.");
        this.B = B;
        this.T = T;
        M = B * T;
    }

    /// <summary>Sequences.</summary>
    public int B { get; private set; }
    /// <summary>Positions per sequence.</summary>
    public int T { get; private set; }
    /// <summary>Rows B·T.</summary>
    public int M { get; private set; }
    /// <summary>True when layer activations are recomputed in the backward.</summary>
    public bool Checkpointing { get; }

    /// <summary>Residual stream: X[l] is the input of layer l, X[L] the last layer's output. (L+1, M, C)</summary>
    public Stream X { get; }
    /// <summary>Per-layer activations (all the same instance under checkpointing).</summary>
    public Layer[] Layers { get; }
    /// <summary>Final norm rstd (M).</summary>
    public Span<float> RstdF => _rstdF.AsSpan(0, M);
    /// <summary>Final norm output (M, C): input of the output projection.</summary>
    public Span<float> XnF => _xnF.AsSpan(0, M * _c);
    /// <summary>Position ids (M).</summary>
    public Span<int> Positions => _positions.AsSpan(0, M);
    /// <summary>Shifted targets (M).</summary>
    public Span<int> Targets => _targets.AsSpan(0, M);
    /// <summary>Attention key mask (M).</summary>
    public Span<byte> KeyMask => _keyMask.AsSpan(0, M);
    /// <summary>The current batch's sequence ids (M), or null when its rows are not packed (set per pass, not owned).</summary>
    public int[]? SequenceIds { get; set; }
    /// <summary>SwiGLU output (M, H): input of down_proj.</summary>
    public Span<float> Hidden => _hidden.AsSpan(0, M * _h);
    /// <summary>Gradient of the residual stream (M, C).</summary>
    public Span<float> DX => _dx.AsSpan(0, M * _c);
    /// <summary>Gradient of a norm output (M, C).</summary>
    public Span<float> DXn => _dxn.AsSpan(0, M * _c);
    /// <summary>Gradient of q (M, NH*HS).</summary>
    public Span<float> DQ => _dq.AsSpan(0, M * _qd);
    /// <summary>(M, NKV*HS).</summary>
    public Span<float> DK => _dk.AsSpan(0, M * _kd);
    /// <summary>(M, NKV*HS).</summary>
    public Span<float> DV => _dv.AsSpan(0, M * _kd);
    /// <summary>(M, NH*HS).</summary>
    public Span<float> DAtt => _dAtt.AsSpan(0, M * _qd);
    /// <summary>(M, H).</summary>
    public Span<float> DH => _dh.AsSpan(0, M * _h);
    /// <summary>(M, H).</summary>
    public Span<float> DGate => _dGate.AsSpan(0, M * _h);
    /// <summary>(M, H).</summary>
    public Span<float> DUp => _dUp.AsSpan(0, M * _h);
    /// <summary>Gradient of q_proj's output before q_norm (M, NH*HS); empty without q/k norms.</summary>
    public Span<float> DQRaw => _dqRaw.AsSpan(0, _dqRaw.Length == 0 ? 0 : M * _qd);
    /// <summary>Gemma: a branch output after its norm (M, C), added into the residual stream; empty otherwise.</summary>
    public Span<float> Normed => _normed.AsSpan(0, _normed.Length == 0 ? 0 : M * _c);
    /// <summary>Gradient of k_proj's output before k_norm (M, NKV*HS); empty without q/k norms.</summary>
    public Span<float> DKRaw => _dkRaw.AsSpan(0, _dkRaw.Length == 0 ? 0 : M * _kd);
    /// <summary>phi3: the output of qkv_proj (M, QD + 2·KD) or gate_up_proj (M, 2·H), or its gradient, before the split
    /// into q/k/v or gate/up (<paramref name="width"/> columns); empty for unfused models.</summary>
    public Span<float> Fused(int width) => _fused.AsSpan(0, M * width);
    /// <summary>Scratch for LoRA dropout and low-rank gradients (sized for <see cref="Capacity"/> rows).</summary>
    public float[] LoraScratch { get; }

    /// <summary>
    /// The <see cref="Bytes"/> that buffers for (B, T) would hold, without allocating them (memory estimates);
    /// a test keeps it equal to a real allocation's.
    /// </summary>
    public static long ByteCount(LlamaConfig c, int B, int T, bool checkpointing, int maxRank)
    {
        long M = (long)B * T, C = c.HiddenSize, H = c.IntermediateSize;
        long QD = (long)c.NumAttentionHeads * c.HeadDim, KD = (long)c.NumKeyValueHeads * c.HeadDim;
        long layer = 2 * M + 3 * M * C + 2 * M * QD + 2 * M * KD + (long)B * c.NumAttentionHeads * T + 2 * M * H;
        long qkNorm = c.QkNorm ? M * QD + M * KD : 0;   // raw q/k per layer, and their gradients once
        layer += c.QkNorm ? qkNorm + M * c.NumAttentionHeads + M * c.NumKeyValueHeads : 0;
        layer += c.SandwichNorms ? 2 * M * C + 2 * M : 0;
        long maxK = Math.Max(Math.Max(C, H), QD);
        long shared = (c.NumHiddenLayers + 1) * M * C                // X
                      + M + M * C + M * H                            // RstdF, XnF, Hidden
                      + 2 * M * C + 2 * M * QD + 2 * M * KD + 3 * M * H   // DX, DXn, DQ, DAtt, DK, DV, DH, DGate, DUp
                      + M * maxK + M * Math.Max(1, maxRank)          // LoraScratch
                      + qkNorm                                       // DQRaw, DKRaw
                      + (c.SandwichNorms ? M * C : 0)                // Normed
                      + (c.FusedProjections ? M * Math.Max(QD + 2 * KD, 2 * H) : 0);   // Fused
        return 4 * (shared + layer * (checkpointing ? 1 : c.NumHiddenLayers));
    }

    /// <summary>Bytes held, for memory reports.</summary>
    public long Bytes
    {
        get
        {
            long n = X.FloatCount + _rstdF.Length + _xnF.Length + _hidden.Length + _dx.Length + _dxn.Length + _dq.Length
                     + _dk.Length + _dv.Length + _dAtt.Length + _dh.Length + _dGate.Length + _dUp.Length + LoraScratch.Length
                     + _dqRaw.Length + _dkRaw.Length + _normed.Length + _fused.Length;
            foreach (var layer in Layers.Distinct()) n += layer.FloatCount;
            return n * 4;
        }
    }
}
