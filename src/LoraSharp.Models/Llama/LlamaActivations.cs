// Buffers of one forward/backward pass for a batch shape (B, T), allocated once and reused every step.
// With activation checkpointing only each layer's input is kept; the layer's other activations live in one
// shared set that the backward refills by recomputing the layer. Shapes use M = B·T rows.
namespace LoraSharp.Models.Llama;

/// <summary>Activations and gradient scratch for one batch shape.</summary>
public sealed class LlamaActivations
{
    /// <summary>Saved activations of one layer.</summary>
    public sealed class Layer
    {
        public float[] Rstd1 = [];     // (M)
        public float[] Xn1 = [];       // (M, C)   input_layernorm output: input of q/k/v
        public float[] Q = [];         // (M, NH*HS) after RoPE
        public float[] K = [];         // (M, NKV*HS) after RoPE
        public float[] V = [];         // (M, NKV*HS)
        public float[] Att = [];       // (M, NH*HS) attention output: input of o_proj
        public float[] Lse = [];       // (B, NH, T) attention log-sum-exp
        public float[] XMid = [];      // (M, C)   residual after attention
        public float[] Rstd2 = [];     // (M)
        public float[] Xn2 = [];       // (M, C)   post_attention_layernorm output: input of gate/up
        public float[] Gate = [];      // (M, H)
        public float[] Up = [];        // (M, H)

        internal Layer(int M, int B, int T, LlamaConfig c)
        {
            int C = c.HiddenSize, H = c.IntermediateSize, QD = c.NumAttentionHeads * c.HeadDim, KD = c.NumKeyValueHeads * c.HeadDim;
            Rstd1 = new float[M]; Xn1 = new float[M * C];
            Q = new float[M * QD]; K = new float[M * KD]; V = new float[M * KD];
            Att = new float[M * QD]; Lse = new float[B * c.NumAttentionHeads * T];
            XMid = new float[M * C]; Rstd2 = new float[M]; Xn2 = new float[M * C];
            Gate = new float[M * H]; Up = new float[M * H];
        }
    }

    /// <summary>Allocates buffers for batch shape (B, T).</summary>
    public LlamaActivations(LlamaConfig c, int B, int T, bool checkpointing, int maxRank)
    {
        this.B = B;
        this.T = T;
        M = B * T;
        Checkpointing = checkpointing;
        int L = c.NumHiddenLayers, C = c.HiddenSize, H = c.IntermediateSize;
        int QD = c.NumAttentionHeads * c.HeadDim, KD = c.NumKeyValueHeads * c.HeadDim;
        X = new float[L + 1][];
        for (int l = 0; l <= L; l++) X[l] = new float[M * C];
        Layers = new Layer[L];
        if (checkpointing)
        {
            var shared = new Layer(M, B, T, c);
            for (int l = 0; l < L; l++) Layers[l] = shared;
        }
        else
        {
            for (int l = 0; l < L; l++) Layers[l] = new Layer(M, B, T, c);
        }
        RstdF = new float[M];
        XnF = new float[M * C];
        Positions = new int[M];
        Targets = new int[M];
        KeyMask = new byte[M];
        Hidden = new float[M * H];
        DX = new float[M * C];
        DXn = new float[M * C];
        DQ = new float[M * QD];
        DK = new float[M * KD];
        DV = new float[M * KD];
        DAtt = new float[M * QD];
        DH = new float[M * H];
        DGate = new float[M * H];
        DUp = new float[M * H];
        int maxK = Math.Max(Math.Max(C, H), QD);
        // LoRA scratch: a dropout copy of an input (M·K) in the forward; dz (M·R) then u or du (M·K) in the backward.
        LoraScratch = new float[M * maxK + M * Math.Max(1, maxRank)];
    }

    /// <summary>Sequences.</summary>
    public int B { get; }
    /// <summary>Positions per sequence.</summary>
    public int T { get; }
    /// <summary>Rows B·T.</summary>
    public int M { get; }
    /// <summary>True when layer activations are recomputed in the backward.</summary>
    public bool Checkpointing { get; }

    /// <summary>Residual stream: X[l] is the input of layer l, X[L] the last layer's output. (L+1, M, C)</summary>
    public float[][] X { get; }
    /// <summary>Per-layer activations (all the same instance under checkpointing).</summary>
    public Layer[] Layers { get; }
    /// <summary>Final norm rstd (M).</summary>
    public float[] RstdF { get; }
    /// <summary>Final norm output (M, C): input of the output projection.</summary>
    public float[] XnF { get; }
    /// <summary>Position ids (M).</summary>
    public int[] Positions { get; }
    /// <summary>Shifted targets (M).</summary>
    public int[] Targets { get; }
    /// <summary>Attention key mask (M).</summary>
    public byte[] KeyMask { get; }
    /// <summary>The current batch's sequence ids (M), or null when its rows are not packed (set per pass, not owned).</summary>
    public int[]? SequenceIds { get; set; }
    /// <summary>SwiGLU output (M, H): input of down_proj.</summary>
    public float[] Hidden { get; }
    /// <summary>Gradient of the residual stream (M, C).</summary>
    public float[] DX { get; }
    /// <summary>Gradient of a norm output (M, C).</summary>
    public float[] DXn { get; }
    /// <summary>Gradients of q, k, v, attention output, SwiGLU output, gate and up.</summary>
    public float[] DQ { get; }
    /// <summary>(M, NKV*HS).</summary>
    public float[] DK { get; }
    /// <summary>(M, NKV*HS).</summary>
    public float[] DV { get; }
    /// <summary>(M, NH*HS).</summary>
    public float[] DAtt { get; }
    /// <summary>(M, H).</summary>
    public float[] DH { get; }
    /// <summary>(M, H).</summary>
    public float[] DGate { get; }
    /// <summary>(M, H).</summary>
    public float[] DUp { get; }
    /// <summary>Scratch for LoRA dropout and low-rank gradients.</summary>
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
        long maxK = Math.Max(Math.Max(C, H), QD);
        long shared = (c.NumHiddenLayers + 1) * M * C                // X
                      + M + M * C + M * H                            // RstdF, XnF, Hidden
                      + 2 * M * C + 2 * M * QD + 2 * M * KD + 3 * M * H   // DX, DXn, DQ, DAtt, DK, DV, DH, DGate, DUp
                      + M * maxK + M * Math.Max(1, maxRank);         // LoraScratch
        return 4 * (shared + layer * (checkpointing ? 1 : c.NumHiddenLayers));
    }

    /// <summary>Bytes held, for memory reports.</summary>
    public long Bytes
    {
        get
        {
            long n = X.Sum(x => (long)x.Length) + RstdF.Length + XnF.Length + Hidden.Length + DX.Length + DXn.Length + DQ.Length
                     + DK.Length + DV.Length + DAtt.Length + DH.Length + DGate.Length + DUp.Length + LoraScratch.Length;
            foreach (var layer in Layers.Distinct())
                n += layer.Rstd1.Length + layer.Xn1.Length + layer.Q.Length + layer.K.Length + layer.V.Length + layer.Att.Length
                     + layer.Lse.Length + layer.XMid.Length + layer.Rstd2.Length + layer.Xn2.Length + layer.Gate.Length + layer.Up.Length;
            return n * 4;
        }
    }
}
