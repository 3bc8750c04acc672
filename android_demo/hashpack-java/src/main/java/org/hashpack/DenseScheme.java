package org.hashpack;

/** {@code dense}: a float32 tensor stored as-is (biases, BatchNorm parameters, uncompressed layers). */
final class DenseScheme implements Scheme {
    @Override
    public String name() {
        return "dense";
    }

    @Override
    public long validate(Param param, Validator v) throws HpkFormatException {
        String where = "param '" + param.name() + "'";
        String tensor = v.string(param.spec(), "tensor", where);
        v.tensor(tensor, DType.F32, Validator.toLongs(param.shape()), where);
        return -1;
    }

    @Override
    public float[] decode(Param param, HpkFile file) {
        return file.tensor((String) param.spec().get("tensor")).toFloatArray();
    }
}
