using LoraSharp.Core.Kernels;
using LoraSharp.TestSupport;
using System.Runtime.Intrinsics;
using LoraSharp.Core.Threading;

namespace LoraSharp.Core.Tests.Kernels;

public class ElementwiseTests
{
    [Fact]
    public void Exp_IsWithinFourUlp_AndVectorLanesEqualScalar()
    {
        for (float x = -87f; x < 88.5f; x += 0.01237f)
        {
            float s = Elementwise.Exp(x);
            double e = Math.Exp(x);
            Assert.True(Math.Abs(s - e) <= 4 * Math.Abs(MathF.BitIncrement((float)e) - (float)e), $"exp({x}) = {s}, expected {e}");
            Assert.Equal(s, Elementwise.Exp(Vector512.Create(x)).GetElement(3));
            Assert.Equal(s, Elementwise.Exp(Vector256.Create(x)).GetElement(5));
            Assert.Equal(s, Elementwise.Exp(Vector128.Create(x)).GetElement(1));
        }
    }

    [Fact]
    public void ExpNonPositive_IsWithinFourUlp_AndVectorLanesEqualScalar()
    {
        for (float x = -87.3f; x <= 0f; x += 0.00731f)
        {
            float s = Elementwise.ExpNonPositive(x);
            double e = Math.Exp(x);
            Assert.True(Math.Abs(s - e) <= 4 * Math.Abs(MathF.BitIncrement((float)e) - (float)e), $"exp({x}) = {s}, expected {e}");
            Assert.Equal(s, Elementwise.ExpNonPositive(Vector512.Create(x)).GetElement(7));
            Assert.Equal(s, Elementwise.ExpNonPositive(Vector256.Create(x)).GetElement(2));
            Assert.Equal(s, Elementwise.ExpNonPositive(Vector128.Create(x)).GetElement(0));
        }
        Assert.Equal(0f, Elementwise.ExpNonPositive(float.NegativeInfinity));
        Assert.Equal(0f, Elementwise.ExpNonPositive(Vector512.Create(float.NegativeInfinity)).GetElement(0));
        Assert.True(float.IsNaN(Elementwise.ExpNonPositive(Vector256.Create(float.NaN)).GetElement(0)));
        Assert.Equal(1f, Elementwise.ExpNonPositive(Vector128<float>.Zero).GetElement(0));
    }

    [Fact]
    public void Exp_SpecialValues()
    {
        float[] xs = [float.NegativeInfinity, -1000f, -88f, 89f, 1000f, float.PositiveInfinity, float.NaN, 0f];
        foreach (float x in xs)
        {
            float s = Elementwise.Exp(x);
            float v = Elementwise.Exp(Vector256.Create(x)).GetElement(0);
            if (float.IsNaN(x)) { Assert.True(float.IsNaN(s) && float.IsNaN(v)); continue; }
            Assert.Equal(s, v);
            if (x < -87.4f) Assert.Equal(0f, s);
            if (x > 88.8f) Assert.Equal(float.PositiveInfinity, s);
        }
        Assert.Equal(1f, Elementwise.Exp(0f));
    }

    [Fact]
    public void Kernels_DoNotAllocate_AfterWarmUp()
    {
        const int N = 40, C = 2048, V = 300, H = 16, HS = 128;   // large enough to run on two threads
        var x = TestData.Uniform(N * C, 1);
        var y = new float[N * C];
        var z = new float[N * C];
        var w = TestData.Uniform(C, 2);
        var r = new float[N];
        var ids = new int[N];
        var table = RopeTable.Create(HS, N, 10000.0, null);
        var positions = Enumerable.Range(0, N).ToArray();
        var emb = new float[V * C];
        var head = PackedWeight.FromF32(TestData.Uniform(V * C, 3), V, C);
        var ws = new CrossEntropyWorkspace(16, V);
        var targets = Enumerable.Range(0, N).Select(i => i % 7 == 0 ? -100 : i).ToArray();
        var report = new System.Text.StringBuilder();
        void Measure(string name, Action<int> run)
        {
            // after warm-up calls, a call must not allocate (the lambda call itself allocates nothing)
            run(0); run(1);
            long before = GC.GetAllocatedBytesForCurrentThread();
            run(2);
            long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            if (allocated != 0) report.Append($"{name}: {allocated} bytes; ");
        }
        using (Threads.Limit(2))
        {
            Measure("RmsNorm.Forward", _ => RmsNorm.Forward(x, w, y, r, N, C, 1e-5f));
            Measure("RmsNorm.Backward", _ => RmsNorm.Backward(x, x, w, r, y, z.AsSpan(0, C), N, C));
            Measure("Rope.Forward", _ => Rope.Forward(y, positions, table, N, H, HS));
            Measure("Rope.Backward", _ => Rope.Backward(y, positions, table, N, H, HS));
            Measure("Silu.Forward", _ => Silu.Forward(x, y));
            Measure("Silu.Backward", _ => Silu.Backward(x, x, y));
            Measure("SwiGlu.Forward", _ => SwiGlu.Forward(x, x, y));
            Measure("SwiGlu.Backward", _ => SwiGlu.Backward(x, x, x, y, z));
            Measure("Softmax.Forward", _ => Softmax.Forward(x, y, N, C));
            Measure("Softmax.Backward", _ => Softmax.Backward(x, x, y, N, C));
            Measure("Embedding.Forward", _ => Embedding.Forward(ids, emb, y, N, C));
            Measure("Embedding.Backward", _ => Embedding.Backward(x, ids, emb, N, C));
            Measure("Dropout.Forward", _ => Dropout.Forward(x, y, 0.1f, 1, 0));
            Measure("Dropout.Backward", _ => Dropout.Backward(x, y, 0.1f, 1, 0));
            // The fused cross-entropy allocates nothing itself; it is checked once MatMul (another kernel, whose scalar
            // reference body formats its shape strings eagerly) is allocation-free too.
            var logits = new float[16 * V];
            long before = GC.GetAllocatedBytesForCurrentThread();
            MatMul.Forward(x.AsSpan(0, 16 * C), head, logits, 16);
            MatMul.BackwardInput(logits, head, y.AsSpan(0, 16 * C), 16);
            if (GC.GetAllocatedBytesForCurrentThread() == before)
                Measure("CrossEntropy.ForwardBackward", _ => CrossEntropy.ForwardBackward(x, head, targets, y, 1f, ws, N, C, out _));
        }
        Assert.True(report.Length == 0, report.ToString());
    }
}
