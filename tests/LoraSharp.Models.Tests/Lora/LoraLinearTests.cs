// A projection with plain LoRA adapters (dropout on, a frozen second adapter, bias, accumulate) against the same
// math in float64, built from Dropout's scalar twin for the masks: forward y, then dx, dA and dB. Covers LoraRows'
// fused paths as Linear drives them (keep bits saved by the forward, read by the backward; more rows than one of
// ProjectBackward's 128-row blocks).
using LoraSharp.Core.Kernels;
using LoraSharp.Models.Lora;
using LoraSharp.TestSupport;

namespace LoraSharp.Models.Tests.Lora;

public class LoraLinearTests
{
    [Theory]
    [InlineData(37, 45, 29, 5, 0.3f, false)]
    [InlineData(300, 64, 48, 8, 0.05f, true)]
    [InlineData(130, 33, 17, 3, 0f, true)]
    public void PlainLora_ForwardAndBackward_MatchFloat64(int M, int K, int N, int R, float p, bool accumulate)
    {
        const ulong stepSeed = 12345;
        var w = TestData.Uniform(N * K, 1, 0.3f);
        var bias = TestData.Uniform(N, 2);
        using var linear = new Linear("test", PackedWeight.FromF32(w, N, K), bias);
        var adapters = new[]
        {
            new LoraAdapter("default", R, K, N, scale: 1.5f, dropout: p, trainable: true),
            new LoraAdapter("frozen", R + 1, K, N, scale: 0.5f, dropout: p, trainable: false),
        };
        for (int i = 0; i < adapters.Length; i++)
        {
            TestData.Uniform(adapters[i].A.Floats.Length, 10 + i, 0.5f).CopyTo(adapters[i].A.Floats);
            TestData.Uniform(adapters[i].B.Floats.Length, 20 + i, 0.5f).CopyTo(adapters[i].B.Floats);
            linear.Attach(adapters[i]);
        }
        var x = TestData.Uniform(M * K, 3);
        var y0 = TestData.Uniform(M * N, 4);
        var y = accumulate ? (float[])y0.Clone() : new float[M * N];
        var scratch = new float[M * K + M * (R + 1)];
        linear.Forward(x, y, M, accumulate, scratch, stepSeed, training: true);

        // float64: u_i = dropout_i(x) (the float values Dropout's twin gives, with Linear's per-adapter stream),
        // z_i = s_i·u_i·A_iᵀ, y = (y0) + x·Wᵀ + b + Σ z_i·B_iᵀ.
        var u = new float[adapters.Length][];
        var z = new double[adapters.Length][];
        var yRef = new double[M * N];
        for (int m = 0; m < M; m++)
            for (int n = 0; n < N; n++)
            {
                double s = (accumulate ? y0[m * N + n] : 0) + bias[n];
                for (int k = 0; k < K; k++) s += (double)x[m * K + k] * w[n * K + k];
                yRef[m * N + n] = s;
            }
        for (int i = 0; i < adapters.Length; i++)
        {
            var a = adapters[i];
            int r = a.Rank;
            u[i] = (float[])x.Clone();
            if (p > 0) Dropout.Reference.Forward(x, u[i], p, stepSeed ^ ((ulong)(i + 1) * 0x9E3779B97F4A7C15UL), 0);
            z[i] = new double[M * r];
            for (int m = 0; m < M; m++)
                for (int j = 0; j < r; j++)
                {
                    double s = 0;
                    for (int k = 0; k < K; k++) s += (double)u[i][m * K + k] * a.A.Floats[j * K + k];
                    z[i][m * r + j] = a.Scale * s;
                }
            for (int m = 0; m < M; m++)
                for (int n = 0; n < N; n++)
                    for (int j = 0; j < r; j++) yRef[m * N + n] += z[i][m * r + j] * a.B.Floats[n * r + j];
        }
        MethodReferences.AssertRelative(y, yRef, 1e-5, "y");

        // Backward: dz_i = s_i·dy·B_i; dB = dyᵀ·z; dA = dzᵀ·u; dx = dy·W + Σ_i dropout_i'(dz_i·A_i).
        var dy = TestData.Uniform(M * N, 5);
        var dx = new float[M * K];
        linear.Backward(dy, x, dx, M, scratch);
        var dxRef = new double[M * K];
        for (int m = 0; m < M; m++)
            for (int k = 0; k < K; k++)
            {
                double s = 0;
                for (int n = 0; n < N; n++) s += (double)dy[m * N + n] * w[n * K + k];
                dxRef[m * K + k] = s;
            }
        for (int i = 0; i < adapters.Length; i++)
        {
            var a = adapters[i];
            int r = a.Rank;
            var dz = new double[M * r];
            for (int m = 0; m < M; m++)
                for (int j = 0; j < r; j++)
                {
                    double s = 0;
                    for (int n = 0; n < N; n++) s += (double)dy[m * N + n] * a.B.Floats[n * r + j];
                    dz[m * r + j] = a.Scale * s;
                }
            float inv = p > 0 ? 1f / (1f - p) : 1f;
            for (int m = 0; m < M; m++)
                for (int k = 0; k < K; k++)
                {
                    bool kept = p == 0 || u[i][m * K + k] != 0;   // x has no zeros: a zero u is a dropped element
                    if (!kept) continue;
                    double s = 0;
                    for (int j = 0; j < r; j++) s += dz[m * r + j] * a.A.Floats[j * K + k];
                    dxRef[m * K + k] += s * inv;
                }
            if (!a.Trainable)
            {
                Assert.Null(a.GradA);
                continue;
            }
            var dA = new double[r * K];
            var dB = new double[N * r];
            for (int m = 0; m < M; m++)
            {
                for (int j = 0; j < r; j++)
                    for (int k = 0; k < K; k++) dA[j * K + k] += dz[m * r + j] * u[i][m * K + k];
                for (int n = 0; n < N; n++)
                    for (int j = 0; j < r; j++) dB[n * r + j] += (double)dy[m * N + n] * z[i][m * r + j];
            }
            MethodReferences.AssertRelative(a.GradA!.Floats, dA, 1e-5, $"dA of adapter {i}");
            MethodReferences.AssertRelative(a.GradB!.Floats, dB, 1e-5, $"dB of adapter {i}");
        }
        MethodReferences.AssertRelative(dx, dxRef, 1e-5, "dx");
    }
}
