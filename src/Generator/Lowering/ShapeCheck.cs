using System;
using System.Collections.Generic;
using System.Linq;

namespace TransformerGen.Generator
{
    /// <summary>
    /// Checks a lowered graph: every operation's shapes agree with what it computes, and every activation it
    /// reads was written by an earlier operation. A failure here is a generator bug, reported as TG9999.
    /// </summary>
    internal static class ShapeCheck
    {
        public static void Verify(ModelGraph graph)
        {
            var problems = new List<string>();
            var written = new HashSet<TensorDef>();
            foreach (Op op in graph.Ops)
            {
                problems.AddRange(op.CheckShapes().Select(p => $"{op.Title}: {p}"));
                foreach (TensorDef read in op.Reads)
                    if (read.Kind == TensorKind.Activation && !written.Contains(read))
                        problems.Add($"{op.Title}: reads {read.Name} before anything writes it");
                foreach (TensorDef write in op.Writes)
                {
                    if (write.Kind == TensorKind.Parameter)
                        problems.Add($"{op.Title}: writes the parameter {write.Name}");
                    written.Add(write);
                }
            }
            if (problems.Count > 0)
                throw new InvalidOperationException("the lowered graph failed its shape check: " + string.Join("; ", problems));
        }
    }
}
