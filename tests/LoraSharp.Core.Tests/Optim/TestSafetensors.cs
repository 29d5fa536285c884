// Reads every F32 tensor of a golden safetensors file with the real reader (Formats).
using LoraSharp.Formats.Safetensors;

namespace LoraSharp.Core.Tests.Optim;

internal static class TestSafetensors
{
    public static Dictionary<string, (int[] Shape, float[] Data)> ReadF32(string path)
    {
        using var st = SafetensorsFile.Open(path);
        var result = new Dictionary<string, (int[] Shape, float[] Data)>();
        foreach (var info in st.Tensors)
        {
            using var t = st.GetTensor(info.Name);
            result[info.Name] = (t.Shape, t.Floats.ToArray());
        }
        return result;
    }
}
