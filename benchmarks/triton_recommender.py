"""Serve a recommender top-k ONNX graph with pytriton's tritonserver, for bench_serving_load.py.

Runs under an interpreter that has nvidia-pytriton (not a project dependency): the wheel's server
has only the Python backend, so requests go tritonserver -> Python backend stub -> this process,
where onnxruntime scores them. On a pyenv interpreter the stub needs the interpreter's own
libpython first on LD_LIBRARY_PATH (see the serving notebook).
Usage: python triton_recommender.py MODEL.onnx HTTP_PORT"""
import sys

import numpy as np
import onnxruntime as ort
from pytriton.decorators import batch
from pytriton.model_config import ModelConfig, Tensor
from pytriton.triton import Triton, TritonConfig

K = 10


def main(path: str, port: int):
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = 1, 1
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    inputs = {i.name: i.shape for i in session.get_inputs()}
    n_items, n_features = inputs["history"][1], inputs["user_features"][1]

    @batch
    def infer(user_index):
        users = user_index.reshape(-1).astype(np.int64)
        _, codes = session.run(None, {
            "user_index": users, "user_features": np.zeros((len(users), n_features), np.float32),
            "history": np.zeros((len(users), n_items), np.float32),
            "k": np.array([K], np.int64)})
        return {"item_codes": codes.astype(np.int64)}

    config = TritonConfig(http_address="127.0.0.1", http_port=port, grpc_address="127.0.0.1",
                          grpc_port=port + 1, metrics_port=port + 2)
    with Triton(config=config) as triton:
        triton.bind(model_name="recommender", infer_func=infer,
                    inputs=[Tensor(name="user_index", dtype=np.int64, shape=(1,))],
                    outputs=[Tensor(name="item_codes", dtype=np.int64, shape=(K,))],
                    config=ModelConfig(max_batch_size=64))
        print("TRITON READY", flush=True)
        triton.serve()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
