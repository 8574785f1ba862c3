using System;

namespace TransformerGen.Tests.Kernels;

/// <summary>Double-precision references the kernels are tested against.</summary>
internal static class ReferenceMath
{
    /// <summary>
    /// erf(x) in double: the Maclaurin series (A&amp;S 7.1.5) for |x| &lt; 2.5, and 1 − erfc(x) from the continued
    /// fraction erfc(x) = e^(−x²)/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + 2/(x + …))))) (A&amp;S 7.1.14) beyond.
    /// </summary>
    public static double Erf(double x)
    {
        if (double.IsNaN(x)) return double.NaN;
        double z = Math.Abs(x);
        double result;
        if (z < 2.5)
        {
            // Σ (−1)ⁿ x²ⁿ⁺¹ / (n!(2n+1)); terms peak near n ≈ x² ≈ 6 at ~50, so double keeps ~1e-15 absolute.
            double term = z, sum = z, z2 = z * z;
            for (int n = 1; n < 200; n++)
            {
                term *= -z2 / n;
                double contribution = term / (2 * n + 1);
                sum += contribution;
                if (Math.Abs(contribution) < 1e-18) break;
            }
            result = 2 / Math.Sqrt(Math.PI) * sum;
        }
        else
        {
            result = 1 - Erfc(z);
        }
        return Math.CopySign(result, x);
    }

    /// <summary>erfc(x) for x ≥ 2.5 by the continued fraction, evaluated from depth 200 upwards.</summary>
    public static double Erfc(double x)
    {
        if (double.IsPositiveInfinity(x)) return 0;
        double tail = x;
        for (int k = 200; k >= 1; k--) tail = x + (k / 2.0) / tail;
        return Math.Exp(-x * x) / Math.Sqrt(Math.PI) / tail;
    }

    public static double Gelu(double x) => 0.5 * x * (1 + Erf(x / Math.Sqrt(2)));
}
