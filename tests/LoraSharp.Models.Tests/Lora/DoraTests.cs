using System.Text.Json;
using LoraSharp.Core.Kernels;
using LoraSharp.Core.Optim;
using LoraSharp.Formats.Safetensors;
using LoraSharp.Models.Llama;
using LoraSharp.Models.Lora;
using LoraSharp.Models.Tests.Llama;
using LoraSharp.TestSupport;

namespace LoraSharp.Models.Tests.Lora;

/// <summary>DoRA against the float64 PyTorch reference of tests/references/methods_reference.py (PEFT's formula).</summary>
public class DoraTests
{
    private const double Rel = 1e-5;

    public static TheoryData<string> LinearCases() => ["plain", "dropout_accumulate", "odd_shapes"];

    [Theory]
    [MemberData(nameof(LinearCases))]
    public void DoraLinear_ForwardAndBackward_MatchFloat64Reference(string name)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(MethodReferences.Path("dora_linear.json")));
        var c = doc.RootElement.GetProperty("cases").EnumerateArray().Single(e => e.GetProperty("name").GetString() == name);
        int M = c.GetProperty("M").GetInt32(), K = c.GetProperty("K").GetInt32(), N = c.GetProperty("N").GetInt32(), R = c.GetProperty("R").GetInt32();
        float[] F(string key) => c.GetProperty(key).EnumerateArray().Select(v => (float)v.GetDouble()).ToArray();
        double[] D(string key) => c.GetProperty(key).EnumerateArray().Select(v => v.GetDouble()).ToArray();
        float p = (float)c.GetProperty("dropout").GetDouble();
        bool accumulate = c.GetProperty("accumulate").GetBoolean();
        float[]? bias = c.GetProperty("bias").ValueKind == JsonValueKind.Null ? null : F("bias");

        using var linear = new Linear("test", PackedWeight.FromF32(F("W"), N, K), bias);
        var adapter = new LoraAdapter("default", R, K, N, (float)c.GetProperty("scale").GetDouble(), p, trainable: true);
        F("A").CopyTo(adapter.A.Floats);
        F("B").CopyTo(adapter.B.Floats);
        adapter.EnableDora(F("m"));
        linear.Attach(adapter);

        var y = accumulate ? F("y0") : new float[M * N];
        var scratch = new float[M * K + M * R];
        linear.Forward(F("x"), y, M, accumulate, scratch, (ulong)c.GetProperty("dropout_seed").GetInt64(), training: true);
        MethodReferences.AssertRelative(y, D("y"), Rel, $"{name}: y");
        var norms = new float[N];
        linear.DoraRowNorms(adapter, norms);
        MethodReferences.AssertRelative(norms, D("norm"), Rel, $"{name}: ‖W + sBA‖");

        var dx = new float[M * K];
        linear.Backward(F("dy"), F("x"), dx, M, scratch);
        MethodReferences.AssertRelative(dx, D("dx"), Rel, $"{name}: dx");
        MethodReferences.AssertRelative(adapter.GradA!.Floats, D("dA"), Rel, $"{name}: dA");
        MethodReferences.AssertRelative(adapter.GradB!.Floats, D("dB"), Rel, $"{name}: dB");
        MethodReferences.AssertRelative(adapter.GradMagnitude!.Floats, D("dm"), Rel, $"{name}: dm");
    }

    private static LlamaModel StoriesWithGoldenDora(out SafetensorsFile reference)
    {
        var model = Stories.Load();
        Stories.AttachGoldenAdapter(model);
        reference = SafetensorsFile.Open(MethodReferences.Path("dora_stories.safetensors"));
        foreach (var (_, _, linear, a) in LoraInjector.Enumerate(model))
        {
            using var m = reference.GetTensor(LoraKeys.Magnitude(linear.Name));
            a.EnableDora(m.Floats);
        }
        return model;
    }

    [Fact]
    public void Stories_LossAndGradients_MatchFloat64Reference()
    {
        using var model = StoriesWithGoldenDora(out var reference);
        using var _ = reference;
        var batch = Stories.GoldenBatch();
        var parameters = model.TrainableParameters();
        Assert.Equal(105, parameters.Count);   // A, B and m of 35 modules
        Optimizer.ZeroGrad(parameters);
        double sum = model.ForwardBackward(batch, 1f / batch.TargetCount, 0, out int count);
        double expected = double.Parse(reference.Metadata["loss_f64"], System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(Math.Abs(sum / count - expected) <= 1e-5 * expected, $"DoRA loss {sum / count:R} vs reference {expected:R}");
        Assert.Equal(expected, model.Loss(batch), 1e-5 * expected);
        foreach (var p in parameters)
        {
            using var g = reference.GetTensor(p.Name + ".grad");
            // 1e-4 of the tensor's largest gradient, as the LoRA golden test: float32 through 5 layers.
            MethodReferences.AssertRelative(p.Grad.Floats, g.Floats.ToArray().Select(v => (double)v).ToArray(), 1e-4, p.Name);
        }
    }

    [Fact]
    public void DefaultInit_GivesTheBaseModelBitForBitUpToTheRowScale()
    {
        // B = 0 and m = ‖W‖: g = 1 exactly, so DoRA's y = 1·(x·Wᵀ) is the base output.
        using var baseModel = Stories.Load();
        using var doraModel = Stories.Load();
        LoraInjector.Attach(doraModel, new LoraSettings { Rank = 4, Alpha = 8, TargetModules = ["all-linear"], UseDora = true }, seed: 7);
        var batch = Stories.GoldenBatch();
        var a = baseModel.Logits(batch);
        var b = doraModel.Logits(batch);
        Assert.True(TestData.MaxAbsDiff(a, b) <= 1e-5, $"DoRA at init differs from the base by {TestData.MaxAbsDiff(a, b):E3}");
        Assert.All(LoraInjector.Enumerate(doraModel), x => Assert.True(x.Adapter.IsDora));
    }

    [Fact]
    public void TwoDoraAdapters_OnOneProjection_AreRefused()
    {
        using var model = Stories.Load();
        LoraInjector.Attach(model, new LoraSettings { Rank = 2, TargetModules = ["q_proj"], UseDora = true }, seed: 1);
        var e = Assert.ThrowsAny<Core.UserErrorException>(() =>
            LoraInjector.Attach(model, new LoraSettings { Rank = 2, TargetModules = ["q_proj"], UseDora = true }, seed: 2, adapterName: "second"));
        Assert.Contains("at most one DoRA adapter", e.Message);
    }

    [Fact]
    public void TrainingStep_WithCheckpointingAndDropout_EqualsWithout()
    {
        // Activation checkpointing re-runs the DoRA forward in the backward: the gradients must not change.
        float[][] Grads(bool checkpointing)
        {
            using var model = Stories.Load();
            model.ActivationCheckpointing = checkpointing;
            LoraInjector.Attach(model, new LoraSettings { Rank = 4, Alpha = 8, Dropout = 0.1, TargetModules = ["all-linear"], UseDora = true, Init = "none" }, seed: 3);
            var ps = model.TrainableParameters();
            Optimizer.ZeroGrad(ps);
            model.ForwardBackward(Stories.GoldenBatch(), 0.1f, 99, out _);
            return ps.Select(p => p.Grad.Floats.ToArray()).ToArray();
        }
        var a = Grads(false);
        var b = Grads(true);
        for (int i = 0; i < a.Length; i++) Assert.Equal(a[i], b[i]);
        Assert.Contains(a, g => g.Any(v => v != 0));
    }
}
