// Test helper: a set of optimizer Parameters over tensors it owns, filled from seeded data or given arrays.
using LoraSharp.Core.Optim;
using LoraSharp.Core.Tensors;
using LoraSharp.TestSupport;

namespace LoraSharp.Core.Tests.Optim;

internal sealed class ParamSet : IDisposable
{
    private readonly List<Tensor> _tensors = [];

    public List<Parameter> Params { get; } = [];

    public Parameter Add(string name, float[] value, float[] grad, params int[] shape)
    {
        var v = Tensor.FromFloats(value, shape);
        var g = Tensor.FromFloats(grad, shape);
        _tensors.Add(v); _tensors.Add(g);
        var p = new Parameter(name, v, g);
        Params.Add(p);
        return p;
    }

    /// <summary>Shapes with seeded uniform values (scale 1) and gradients (scale 0.1).</summary>
    public static ParamSet Random(int seed, params int[][] shapes)
    {
        var set = new ParamSet();
        for (int i = 0; i < shapes.Length; i++)
        {
            int n = shapes[i].Aggregate(1, (a, b) => a * b);
            set.Add($"layers.{i}.weight", TestData.Uniform(n, seed * 1000 + 2 * i), TestData.Uniform(n, seed * 1000 + 2 * i + 1, 0.1f), shapes[i]);
        }
        return set;
    }

    /// <summary>Overwrites every gradient with new seeded values (a "fresh backward").</summary>
    public void NewGrads(int seed)
    {
        for (int i = 0; i < Params.Count; i++)
            TestData.Uniform(Params[i].Length, seed * 7919 + i, 0.1f).CopyTo(Params[i].Grad.Floats);
    }

    public float[][] Values() => Params.Select(p => p.Value.Floats.ToArray()).ToArray();

    public void Dispose()
    {
        foreach (var t in _tensors) t.Dispose();
    }
}
