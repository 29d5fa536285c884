using LoraSharp.Core.Optim;

namespace LoraSharp.Core.Tests.Optim;

/// <summary>Parameter.LearningRateScale (LoRA+): a scaled parameter steps as its own group at lr × scale.</summary>
public class LearningRateScaleTests
{
    [Theory]
    [InlineData("adamw")]
    [InlineData("sgd")]
    [InlineData("lion")]
    public void ScaledParameter_StepsAsOwnGroupAtScaledRate(string name)
    {
        var options = new OptimizerOptions { WeightDecay = 0.1, Momentum = 0.9 };
        using var grouped = ParamSet.Random(3, [4, 5], [5, 4]);
        using var a = ParamSet.Random(3, [4, 5]);
        using var b = ParamSet.Random(3, [4, 5], [5, 4]);   // b.Params[1] is the same data as grouped.Params[1]
        grouped.Params[1].LearningRateScale = 16;
        var opt = OptimizerFactory.Create(name, options);
        var optA = OptimizerFactory.Create(name, options);
        var optB = OptimizerFactory.Create(name, options);
        for (int step = 0; step < 3; step++)
        {
            opt.Step(grouped.Params, 1e-2);
            optA.Step([a.Params[0]], 1e-2);
            optB.Step([b.Params[1]], 1e-2 * 16);
            grouped.NewGrads(step + 10);
            a.NewGrads(step + 10);
            b.NewGrads(step + 10);
        }
        Assert.Equal(a.Params[0].Value.Floats.ToArray(), grouped.Params[0].Value.Floats.ToArray());
        Assert.Equal(b.Params[1].Value.Floats.ToArray(), grouped.Params[1].Value.Floats.ToArray());
        Assert.Equal(3, opt.StepCount);   // one step count for both groups (bias corrections use t, not t per group)
        // and the scale really changed something
        using var plain = ParamSet.Random(3, [4, 5], [5, 4]);
        var optPlain = OptimizerFactory.Create(name, options);
        optPlain.Step(plain.Params, 1e-2);
        using var once = ParamSet.Random(3, [4, 5], [5, 4]);
        once.Params[1].LearningRateScale = 16;
        OptimizerFactory.Create(name, options).Step(once.Params, 1e-2);
        Assert.NotEqual(plain.Params[1].Value.Floats.ToArray(), once.Params[1].Value.Floats.ToArray());
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(-1.0)]
    [InlineData(double.NaN)]
    public void NonPositiveScale_IsRejectedWithTheParameterName(double scale)
    {
        using var set = ParamSet.Random(1, [2, 2]);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => set.Params[0].LearningRateScale = scale);
        Assert.Contains("layers.0.weight", e.Message);
    }
}
