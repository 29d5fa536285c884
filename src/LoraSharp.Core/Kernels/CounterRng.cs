// A counter-based random generator: the value at counter i depends only on (seed, i), so any slice of the
// stream can be produced by any thread, in any order, at any vector width, with identical results.
//   key  k0, k1, k2 = fmix32 of the seed's halves (fixed per seed)
//   h    = fmix32(lo(i) ^ k0);  h = fmix32(h + (hi(i) ^ k1));  h = fmix32(h ^ k2)
// fmix32 is MurmurHash3's finaliser (a bijection with full avalanche); three keyed rounds make streams of
// different seeds unrelated and cost six 32-bit multiplies per value, which vectorize at every width.
// Not a cryptographic generator; meant for dropout masks.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace LoraSharp.Core.Kernels;

/// <summary>Stateless counter-based 32-bit random values.</summary>
public readonly struct CounterRng
{
    private readonly uint _k0, _k1, _k2;

    /// <summary>The generator for <paramref name="seed"/>.</summary>
    public CounterRng(ulong seed)
    {
        _k0 = Mix((uint)seed ^ 0x243F6A88u);
        _k1 = Mix((uint)(seed >> 32) ^ 0x85A308D3u);
        _k2 = Mix(_k0 + _k1 + 0x13198A2Eu);
    }

    /// <summary>The value at <paramref name="counter"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public uint Next(ulong counter)
    {
        uint h = Mix((uint)counter ^ _k0);
        h = Mix(h + ((uint)(counter >> 32) ^ _k1));
        return Mix(h ^ _k2);
    }

    /// <summary>Values at counters lo + lane (same high word hi for every lane).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal Vector512<uint> Next(Vector512<uint> lo, uint hi)
    {
        var h = Mix(lo ^ Vector512.Create(_k0));
        h = Mix(h + Vector512.Create(hi ^ _k1));
        return Mix(h ^ Vector512.Create(_k2));
    }

    /// <inheritdoc cref="Next(Vector512{uint}, uint)"/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal Vector256<uint> Next(Vector256<uint> lo, uint hi)
    {
        var h = Mix(lo ^ Vector256.Create(_k0));
        h = Mix(h + Vector256.Create(hi ^ _k1));
        return Mix(h ^ Vector256.Create(_k2));
    }

    /// <inheritdoc cref="Next(Vector512{uint}, uint)"/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal Vector128<uint> Next(Vector128<uint> lo, uint hi)
    {
        var h = Mix(lo ^ Vector128.Create(_k0));
        h = Mix(h + Vector128.Create(hi ^ _k1));
        return Mix(h ^ Vector128.Create(_k2));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint Mix(uint h)
    {
        h ^= h >> 16;
        h *= 0x85EBCA6Bu;
        h ^= h >> 13;
        h *= 0xC2B2AE35u;
        return h ^ (h >> 16);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<uint> Mix(Vector512<uint> h)
    {
        h ^= h >>> 16;
        h *= Vector512.Create(0x85EBCA6Bu);
        h ^= h >>> 13;
        h *= Vector512.Create(0xC2B2AE35u);
        return h ^ (h >>> 16);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<uint> Mix(Vector256<uint> h)
    {
        h ^= h >>> 16;
        h *= Vector256.Create(0x85EBCA6Bu);
        h ^= h >>> 13;
        h *= Vector256.Create(0xC2B2AE35u);
        return h ^ (h >>> 16);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<uint> Mix(Vector128<uint> h)
    {
        h ^= h >>> 16;
        h *= Vector128.Create(0x85EBCA6Bu);
        h ^= h >>> 13;
        h *= Vector128.Create(0xC2B2AE35u);
        return h ^ (h >>> 16);
    }
}
