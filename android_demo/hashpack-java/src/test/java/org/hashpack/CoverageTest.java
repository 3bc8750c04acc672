package org.hashpack;

import static org.junit.Assert.assertEquals;

import java.io.File;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import org.hashpack.ops.Ops;
import org.junit.Test;

/** The fixtures exercise every op, scheme and space dtype this decoder knows. */
public class CoverageTest {
    @Test
    public void fixturesCoverEveryOpSchemeAndSpaceDtype() {
        Map<String, Object> manifest = TestSupport.readJson(new File(TestSupport.fixtures(), "manifest.json"));
        TreeSet<String> ops = new TreeSet<>();
        TreeSet<String> schemes = new TreeSet<>();
        TreeSet<String> dtypes = new TreeSet<>();
        for (Object m : (List<?>) manifest.get("models")) {
            Map<?, ?> model = (Map<?, ?>) m;
            for (Object op : (List<?>) model.get("ops")) {
                ops.add((String) op);
            }
            for (Object s : (List<?>) model.get("schemes")) {
                schemes.add((String) s);
            }
            for (Object d : (List<?>) model.get("space_dtypes")) {
                dtypes.add((String) d);
            }
        }
        assertEquals(new TreeSet<>(Ops.all().keySet()), ops);
        assertEquals(new TreeSet<>(Schemes.names()), schemes);
        assertEquals(new TreeSet<>(java.util.Arrays.asList("float16", "float32", "int8")), dtypes);
    }
}
