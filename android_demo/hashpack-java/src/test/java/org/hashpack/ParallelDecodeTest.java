package org.hashpack;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import java.io.File;
import java.util.Map;
import org.junit.Test;

/** Decoding params on several threads gives the same bits as one thread, for every fixture file. */
public class ParallelDecodeTest {
    @Test
    public void threadsDoNotChangeTheWeights() throws Exception {
        File[] files = TestSupport.fixtures().listFiles((dir, name) -> name.endsWith(".hpk"));
        assertTrue(files != null && files.length >= 5);
        int compared = 0;
        for (File file : files) {
            HpkFile hpk = HpkReader.read(file);
            Map<String, Tensor> one = new Model(hpk, 1).weights();
            Map<String, Tensor> three = new Model(hpk, 3).weights();
            assertEquals(file.getName(), one.keySet(), three.keySet());
            for (String name : one.keySet()) {
                float[] a = one.get(name).data();
                float[] b = three.get(name).data();
                assertEquals(file.getName() + " " + name, a.length, b.length);
                for (int i = 0; i < a.length; i++) {
                    if (Float.floatToRawIntBits(a[i]) != Float.floatToRawIntBits(b[i])) {
                        fail(file.getName() + " " + name + "[" + i + "]: " + a[i] + " vs " + b[i]);
                    }
                }
                compared++;
            }
        }
        assertTrue(compared > 20);
    }
}
