// Frozen f32 weights, pre-arranged once in the GEMM's panel layout (see PanelSource.cs for the two orientations).
// Memory: the forward panels are W with N rounded up to a multiple of 32 (about 1x the f32 weight). The backward
// panels (K rounded up to 32, N deep) are built from the forward panels on the first BackwardInput call, so
// inference never pays for them and training pays about 2x the f32 weight in total.
// Not here: the driver, quantized formats.
using LoraSharp.Core.Tensors;

namespace LoraSharp.Core.Kernels.Gemm;

/// <summary>A frozen f32 weight W [N, K] held as forward panels, with backward panels built on first use.</summary>
internal sealed unsafe class F32PanelSource : PanelSource
{
    private const int NR = GemmKernels.NR;

    private readonly int _n, _k;
    private readonly AlignedBuffer _forward;           // (ceil(N/32), K, 32)
    private AlignedBuffer? _backward;                  // (ceil(K/32), N, 32), built lazily
    private readonly Lock _backwardLock = new();

    public override int N => _n;
    public override int K => _k;

    private F32PanelSource(int n, int k)
    {
        _n = n;
        _k = k;
        _forward = AlignedBuffer.Zeros(Panels(n) * (long)k * NR, $"Packed weight [{n}, {k}]");
    }

    /// <summary>Packs an f32 W [N, K] row-major.</summary>
    public static F32PanelSource FromF32(ReadOnlySpan<float> w, int n, int k)
    {
        var s = new F32PanelSource(n, k);
        for (int row = 0; row < n; row++) s.ScatterRow(row, w.Slice(row * k, k));
        return s;
    }

    /// <summary>Packs a bf16 W [N, K] row-major (bit patterns), widening one row at a time.</summary>
    public static F32PanelSource FromBf16(ReadOnlySpan<ushort> w, int n, int k)
    {
        var s = new F32PanelSource(n, k);
        var row = new float[k];
        for (int r = 0; r < n; r++)
        {
            Bf16.ToFloat(w.Slice(r * k, k), row);
            s.ScatterRow(r, row);
        }
        return s;
    }

    /// <summary>W[n, k] (for tests and the scalar path).</summary>
    public float At(int n, int k) => _forward.Pointer[(long)(n / NR) * _k * NR + (long)k * NR + n % NR];

    public override bool TryDirect(bool backward, out float* @base, out long panelStride)
    {
        if (backward)
        {
            @base = (Volatile.Read(ref _backward) ?? BuildBackward()).Pointer;
            panelStride = (long)_n * NR;
        }
        else
        {
            @base = _forward.Pointer;
            panelStride = (long)_k * NR;
        }
        return true;
    }

    public override void Pack(bool backward, int panel0, int panels, int r0, int kc, float* dst)
    {
        TryDirect(backward, out float* b, out long stride);
        long bytes = (long)kc * NR * sizeof(float);
        for (int p = 0; p < panels; p++)
            Buffer.MemoryCopy(b + (panel0 + p) * stride + (long)r0 * NR, dst + p * (long)kc * NR, bytes, bytes);
    }

    public override long Bytes => (_forward.Capacity + (Volatile.Read(ref _backward)?.Capacity ?? 0)) * sizeof(float);

    private void ScatterRow(int n, ReadOnlySpan<float> row)
    {
        float* p = _forward.Pointer + (long)(n / NR) * _k * NR + n % NR;
        for (int k = 0; k < row.Length; k++) p[(long)k * NR] = row[k];
    }

    private AlignedBuffer BuildBackward()
    {
        lock (_backwardLock)
        {
            if (_backward is { } done) return done;
            var b = AlignedBuffer.Zeros(Panels(_k) * (long)_n * NR, $"Backward panels of weight [{_n}, {_k}]");
            float* dst = b.Pointer;
            for (int n = 0; n < _n; n++)
            {
                float* src = _forward.Pointer + (long)(n / NR) * _k * NR + n % NR;
                for (int k = 0; k < _k; k++) dst[(long)(k / NR) * _n * NR + (long)n * NR + k % NR] = src[(long)k * NR];
            }
            Volatile.Write(ref _backward, b);   // published only once fully written
            return b;
        }
    }

    private static long Panels(int cols) => (cols + NR - 1) / NR;
}
