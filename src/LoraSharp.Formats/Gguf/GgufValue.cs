// One GGUF metadata value: a scalar (boxed CLR value of the matching type), a string, or an array (a typed CLR
// array: byte[], float[], string[], ..., or GgufValue[] for arrays of arrays). Plain data; no IO.
using System.Globalization;

namespace LoraSharp.Formats.Gguf;

/// <summary>A GGUF metadata value.</summary>
/// <param name="Type">The value's type code.</param>
/// <param name="Value">byte, sbyte, ushort, short, uint, int, float, bool, string, ulong, long, double, or for arrays a CLR array.</param>
/// <param name="ElementType">For arrays: the element type code.</param>
public sealed record GgufValue(GgufValueType Type, object Value, GgufValueType ElementType = GgufValueType.UInt8)
{
    /// <summary>Wraps a CLR value, inferring the GGUF type (arrays of the scalar types and of strings included).</summary>
    public static GgufValue From(object value) => value switch
    {
        GgufValue g => g,
        byte v => new(GgufValueType.UInt8, v),
        sbyte v => new(GgufValueType.Int8, v),
        ushort v => new(GgufValueType.UInt16, v),
        short v => new(GgufValueType.Int16, v),
        uint v => new(GgufValueType.UInt32, v),
        int v => new(GgufValueType.Int32, v),
        float v => new(GgufValueType.Float32, v),
        bool v => new(GgufValueType.Bool, v),
        string v => new(GgufValueType.String, v),
        ulong v => new(GgufValueType.UInt64, v),
        long v => new(GgufValueType.Int64, v),
        double v => new(GgufValueType.Float64, v),
        Array a => FromArray(a),
        _ => throw new ArgumentException($"{value.GetType().Name} has no GGUF metadata type."),
    };

    // Matched on the exact array type: the CLR lets sbyte[] pass an 'is byte[]' test (and int[]/uint[], ...).
    private static GgufValue FromArray(Array a)
    {
        var t = a.GetType().GetElementType()!;
        GgufValueType et =
            t == typeof(byte) ? GgufValueType.UInt8 : t == typeof(sbyte) ? GgufValueType.Int8 :
            t == typeof(ushort) ? GgufValueType.UInt16 : t == typeof(short) ? GgufValueType.Int16 :
            t == typeof(uint) ? GgufValueType.UInt32 : t == typeof(int) ? GgufValueType.Int32 :
            t == typeof(float) ? GgufValueType.Float32 : t == typeof(bool) ? GgufValueType.Bool :
            t == typeof(string) ? GgufValueType.String : t == typeof(ulong) ? GgufValueType.UInt64 :
            t == typeof(long) ? GgufValueType.Int64 : t == typeof(double) ? GgufValueType.Float64 :
            t == typeof(GgufValue) ? GgufValueType.Array :
            throw new ArgumentException($"{a.GetType().Name} has no GGUF metadata type.");
        return new(GgufValueType.Array, a, et);
    }

    /// <summary>True for integer scalars.</summary>
    public bool IsInteger => Type is GgufValueType.UInt8 or GgufValueType.Int8 or GgufValueType.UInt16 or GgufValueType.Int16
        or GgufValueType.UInt32 or GgufValueType.Int32 or GgufValueType.UInt64 or GgufValueType.Int64;

    /// <summary>An integer scalar as long; throws naming the type otherwise.</summary>
    public long AsInt64() => Value switch
    {
        byte v => v, sbyte v => v, ushort v => v, short v => v, uint v => v, int v => v, long v => v,
        ulong v when v <= long.MaxValue => (long)v,
        _ => throw new InvalidCastException($"GGUF value of type {Type} ({Value}) is not an integer."),
    };

    /// <summary>A numeric scalar as double.</summary>
    public double AsDouble() => Value switch
    {
        float f => f, double d => d,
        _ when IsInteger => AsInt64(),
        _ => throw new InvalidCastException($"GGUF value of type {Type} is not a number."),
    };

    /// <summary>A string value.</summary>
    public string AsString() => Value as string ?? throw new InvalidCastException($"GGUF value of type {Type} is not a string.");

    /// <summary>A bool value.</summary>
    public bool AsBool() => Value is bool b ? b : throw new InvalidCastException($"GGUF value of type {Type} is not a bool.");

    /// <summary>Array element count (0 for scalars).</summary>
    public int Count => Value is Array a ? a.Length : 0;

    /// <summary>The array as T[]; throws unless the elements are T.</summary>
    public T[] AsArray<T>() => Value as T[] ?? throw new InvalidCastException($"GGUF value of type {Type}/{ElementType} is not an array of {typeof(T).Name}.");

    /// <summary>Short text for listings (arrays show their type and length).</summary>
    public override string ToString() => Value switch
    {
        Array a => $"[{ElementType} x {a.Length}]",
        string s => s,
        float f => f.ToString("R", CultureInfo.InvariantCulture),
        double d => d.ToString("R", CultureInfo.InvariantCulture),
        _ => Convert.ToString(Value, CultureInfo.InvariantCulture) ?? "",
    };

    /// <summary>Structural equality, element-wise for arrays (records compare arrays by reference).</summary>
    public bool ValueEquals(GgufValue other)
    {
        if (Type != other.Type) return false;
        if (Value is Array a && other.Value is Array b)
        {
            if (ElementType != other.ElementType || a.Length != b.Length) return false;
            for (int i = 0; i < a.Length; i++)
            {
                object x = a.GetValue(i)!, y = b.GetValue(i)!;
                if (x is GgufValue gx ? !(y is GgufValue gy && gx.ValueEquals(gy)) : !Equals(x, y)) return false;
            }
            return true;
        }
        return Equals(Value, other.Value);
    }
}
