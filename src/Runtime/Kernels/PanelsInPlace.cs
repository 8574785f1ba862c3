using System;
using System.Runtime.InteropServices;

namespace TransformerGen.Kernels;

/// <summary>
/// Converts a weight matrix between PyTorch's fp32 rows and a smaller panel form (bf16 panels, 8-bit blocks) in place,
/// one panel of 64 rows at a time through a buffer of 64·inF floats. Panels are made in ascending order and each ends
/// before the rows of the next one start (the caller checks that the form fits), so nothing is read after it is
/// overwritten; going back, panels are taken in descending order, each read before the rows written after it reach
/// its bytes.
/// </summary>
internal static class PanelsInPlace
{
    /// <summary>Writes the panel form of <paramref name="rows"/> (<c>[r, inF]</c>, r ≤ 64) into <paramref name="panel"/>.</summary>
    public delegate void Writer(ReadOnlySpan<float> rows, int r, int inF, Span<byte> panel);

    /// <summary>Reads the <c>[r, inF]</c> rows that <paramref name="panel"/> stands for into <paramref name="rows"/>.</summary>
    public delegate void Reader(ReadOnlySpan<byte> panel, int r, int inF, Span<float> rows);

    private const int PanelWidth = 64;

    public static void Pack(Span<float> w, int outF, int inF, int panelBytes, Writer write)
    {
        Span<byte> bytes = MemoryMarshal.AsBytes(w);
        var buffer = new float[PanelWidth * inF];
        for (int p = 0; p * PanelWidth < outF; p++)
        {
            int r = Math.Min(PanelWidth, outF - p * PanelWidth);
            Span<float> rows = buffer.AsSpan(0, r * inF);
            w.Slice(p * PanelWidth * inF, r * inF).CopyTo(rows);
            write(rows, r, inF, bytes.Slice(p * panelBytes, panelBytes));
        }
    }

    public static void Unpack(Span<float> w, int outF, int inF, int panelBytes, Reader read)
    {
        ReadOnlySpan<byte> bytes = MemoryMarshal.AsBytes(w);
        var buffer = new float[PanelWidth * inF];
        for (int p = (outF + PanelWidth - 1) / PanelWidth - 1; p >= 0; p--)
        {
            int r = Math.Min(PanelWidth, outF - p * PanelWidth);
            Span<float> rows = buffer.AsSpan(0, r * inF);
            read(bytes.Slice(p * panelBytes, panelBytes), r, inF, rows);
            rows.CopyTo(w.Slice(p * PanelWidth * inF, r * inF));
        }
    }
}
