namespace TransformerGen.Kernels;

/// <summary>
/// The row count of a register tile of the reduced-weight products (<see cref="QuantizedMatMul"/>,
/// <see cref="BFloat16MatMul"/>): a type argument, so that each tile size is its own compiled method in which the rows past
/// <see cref="Rows"/> are dead code, and one kernel serves 2, 4 and 6 rows.
/// </summary>
internal interface IRowTile
{
    /// <summary>Rows of x the tile takes against one panel.</summary>
    static abstract int Rows { get; }
}

/// <summary>The tile sizes: six rows fill the registers with block sums; four and two take what is left of a few rows.</summary>
internal static class RowTile
{
    public readonly struct Two : IRowTile
    {
        public static int Rows => 2;
    }

    public readonly struct Four : IRowTile
    {
        public static int Rows => 4;
    }

    public readonly struct Six : IRowTile
    {
        public static int Rows => 6;
    }
}
