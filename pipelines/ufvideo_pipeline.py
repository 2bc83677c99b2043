"""The UFVideo training pipeline: curate -> stage 1 -> stage 2 -> evaluate (one task per benchmark) -> register.

`build_pipeline(image, gpu_image)` is the factory: it binds the components to their images and returns the
pipeline function, so images are chosen when the pipeline is compiled (no environment read at import). Everything
Kubernetes-specific is attached here with `kfp.kubernetes`, from pipeline parameters where a cluster differs (GPU
pool node selector and tolerations, accelerator type and count, workspace PVC): the components stay plain
functions that also run under `kfp.local`. Compile with `python -m pipelines compile`; the YAML is committed.
"""

# No `from __future__ import annotations`: KFP reads the live annotations of the pipeline functions.

from typing import Any, List  # noqa: UP035 (KFP parses typing.List, not list[str], as a pipeline output)

from kfp import dsl, kubernetes

from components import curate_data, evaluate_benchmark, register_model, train_stage
from components.image import DEFAULT_GPU_IMAGE, DEFAULT_IMAGE, is_pinned

PIPELINE_NAME = "ufvideo-train-eval-register"
WORKSPACE_MOUNT = "/workspace"
SHM_SIZE = "64Gi"
RELEASE_PROFILE = "ufvideo-7b"
GPU_TOLERATIONS = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
# Secret -> {key: env var} (see pipelines/README.md). The judge secret is optional: without it judge metrics are null.
S3_SECRET = ("s3-credentials", {k: k for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")})
MLFLOW_SECRET = ("mlflow-tracking", {"MLFLOW_TRACKING_URI": "MLFLOW_TRACKING_URI"})
MLFLOW_AUTH_SECRET = ("mlflow-auth", {k: k for k in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")})
JUDGE_SECRET = (
    "judge-credentials",
    {k: k for k in ("UFVIDEO_JUDGE_BASE_URL", "UFVIDEO_JUDGE_MODEL", "UFVIDEO_JUDGE_API_KEY")},
)
STORAGE_CONFIG = (
    "ufvideo-storage",
    {k: k for k in ("AWS_ENDPOINT_URL", "MLFLOW_S3_ENDPOINT_URL", "AWS_DEFAULT_REGION")},
)


def gated_benchmarks(profile: str = RELEASE_PROFILE) -> list:
    """The benchmarks the profile's promotion policy gates on: the pipeline's default evaluation list, so the gate
    never waits for a benchmark the pipeline did not run."""
    from ufvideo.registry.gate import load_policy

    return list(load_policy(profile=profile).benchmarks)


def _platform(task: dsl.PipelineTask, pvc: object, judge: bool = False) -> dsl.PipelineTask:
    """Workspace PVC, storage endpoints and credentials: what every step needs to read and write its data."""
    kubernetes.mount_pvc(task, pvc_name=pvc, mount_path=WORKSPACE_MOUNT)
    kubernetes.use_config_map_as_env(task, STORAGE_CONFIG[0], STORAGE_CONFIG[1], optional=True)
    kubernetes.use_secret_as_env(task, S3_SECRET[0], S3_SECRET[1])
    # required: without it the steps would log to a sqlite file inside the pod and the runs would vanish with it
    kubernetes.use_secret_as_env(task, MLFLOW_SECRET[0], MLFLOW_SECRET[1])
    kubernetes.use_secret_as_env(task, MLFLOW_AUTH_SECRET[0], MLFLOW_AUTH_SECRET[1], optional=True)
    if judge:
        kubernetes.use_secret_as_env(task, JUDGE_SECRET[0], JUDGE_SECRET[1], optional=True)
    kubernetes.set_image_pull_policy(task, "IfNotPresent")
    return task


def _gpu(task: dsl.PipelineTask, accelerator: object, count: object, selector: object, tolerations: object) -> None:
    """The GPU pool: accelerator resources, the pool's node selector and taints, a RAM-backed /dev/shm."""
    task.set_accelerator_type(accelerator).set_accelerator_limit(count)
    kubernetes.add_node_selector_json(task, selector)
    kubernetes.add_toleration_json(task, tolerations)
    kubernetes.empty_dir_mount(task, volume_name="dshm", mount_path="/dev/shm", medium="Memory", size_limit=SHM_SIZE)


def build_pipeline(image: str = DEFAULT_IMAGE, gpu_image: str = DEFAULT_GPU_IMAGE) -> Any:
    """The pipeline with its CPU steps (curate, register) in `image` and its GPU steps (train, evaluate) in
    `gpu_image`; the default benchmark list is the release policy's (`gated_benchmarks`)."""
    curate_op = curate_data.component(image)
    train = train_stage.component(gpu_image)
    evaluate = evaluate_benchmark.component(gpu_image)
    register_op = register_model.component(image)
    default_benchmarks = gated_benchmarks()

    @dsl.pipeline(name="ufvideo-evaluate-one", description="One benchmark on one checkpoint, on the GPU pool.")
    def evaluate_one(
        benchmark: str,
        checkpoint_uri: str,
        checkpoint_digest: str,
        workspace: str,
        run_id: str,
        data_root: str,
        profile: str,
        max_samples: int,
        overrides: list,
        accelerator_type: str,
        accelerator_count: int,
        gpu_node_selector: dict,
        gpu_tolerations: list,
        workspace_pvc: str,
    ) -> str:
        """A sub-pipeline so the GPU settings reach the task as this DAG's own inputs (a channel used directly inside a
        `ParallelFor` body is not forwarded by kfp.local)."""
        task = evaluate(
            benchmark=benchmark,
            checkpoint_uri=checkpoint_uri,
            checkpoint_digest=checkpoint_digest,
            workspace=workspace,
            run_id=run_id,
            data_root=data_root,
            profile=profile,
            max_samples=max_samples,
            overrides=overrides,
        )
        task.set_display_name("evaluate").set_caching_options(True).set_retry(2, backoff_duration="60s")
        _gpu(task, accelerator_type, accelerator_count, gpu_node_selector, gpu_tolerations)
        _platform(task, workspace_pvc, judge=True)
        return task.outputs["metrics_uri"]

    @dsl.pipeline(name="ufvideo-evaluate-all", description="Every benchmark in parallel, one GPU each.")
    def evaluate_all(
        benchmarks: list,
        checkpoint_uri: str,
        checkpoint_digest: str,
        workspace: str,
        data_root: str,
        profile: str,
        max_samples: int,
        overrides: list,
        accelerator_type: str,
        gpu_node_selector: dict,
        gpu_tolerations: list,
        workspace_pvc: str,
    ) -> List[str]:  # noqa: UP006
        """The fan-out; a sub-pipeline so the loop reads only this DAG's inputs (kfp.local replaces task outputs fed
        straight into a ParallelFor body with the loop item). Returns each benchmark's metrics.json URI."""
        with dsl.ParallelFor(benchmarks, parallelism=4) as benchmark:
            one = evaluate_one(
                benchmark=benchmark,
                checkpoint_uri=checkpoint_uri,
                checkpoint_digest=checkpoint_digest,
                workspace=workspace,
                run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
                data_root=data_root,
                profile=profile,
                max_samples=max_samples,
                overrides=overrides,
                accelerator_type=accelerator_type,
                accelerator_count=1,
                gpu_node_selector=gpu_node_selector,
                gpu_tolerations=gpu_tolerations,
                workspace_pvc=workspace_pvc,
            )
        return dsl.Collected(one.output)

    def _train(stage: int, data: dsl.PipelineTask, init: dsl.PipelineTask | None, p: dict) -> dsl.PipelineTask:
        task = train(
            stage=stage,
            workspace=p["workspace"],
            run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
            data_uri=data.outputs["uri"],
            data_digest=data.outputs["digest"],
            init_uri=init.outputs["uri"] if init is not None else "",
            profile=p["profile"],
            overrides=p["overrides"],
            checkpoint_store=p["checkpoint_store"],
            num_nodes=p[f"stage{stage}_num_nodes"],
            gpus_per_node=p["accelerator_count"],
            accelerator=p["accelerator_type"],
            node_selector=p["gpu_node_selector"],
            tolerations=p["gpu_tolerations"],
            pvc=p["workspace_pvc"],
            job_kind=p["train_job_kind"],
            job_image=gpu_image,  # the training pods run the image this step runs
            freeze_policy=p[f"stage{stage}_freeze_policy"],
        )
        task.set_display_name(f"train stage {stage}").set_caching_options(False)  # resumes itself; never replayed
        _gpu(task, p["accelerator_type"], p["accelerator_count"], p["gpu_node_selector"], p["gpu_tolerations"])
        return _platform(task, p["workspace_pvc"])

    @dsl.pipeline(name=PIPELINE_NAME, description="UFVideo: curate, train stages 1 and 2, evaluate, register + gate.")
    def ufvideo_pipeline(
        profile: str = "ufvideo-7b",
        workspace: str = WORKSPACE_MOUNT,
        workspace_pvc: str = "ufvideo-workspace",
        synth_videos: int = 0,
        overrides: list = [],  # noqa: B006 (`section.key=value` strings, e.g. train_stage1.max_steps=2)
        benchmarks: list = default_benchmarks,
        eval_data_root: str = "",
        eval_max_samples: int = 0,
        checkpoint_store: str = "",
        model_name: str = "",
        promotion_policy: str = "",
        promote: bool = True,
        accelerator_type: str = "nvidia.com/gpu",
        accelerator_count: int = 8,
        stage1_num_nodes: int = 1,
        stage2_num_nodes: int = 4,
        stage1_freeze_policy: str = "",  # align | full | lora; empty: the profile's (lora: an adapter checkpoint)
        stage2_freeze_policy: str = "",
        train_job_kind: str = "trainjob",
        gpu_node_selector: dict = {},  # noqa: B006 (e.g. {"cloud.google.com/gke-accelerator": "nvidia-h100-80gb"})
        gpu_tolerations: list = GPU_TOLERATIONS,
    ):
        p = dict(locals())
        curate = curate_op(
            workspace=workspace,
            run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
            profile=profile,
            synth_videos=synth_videos,
            overrides=overrides,
        )
        curate.set_display_name("curate").set_caching_options(True).set_retry(3, backoff_duration="30s")
        _platform(curate, workspace_pvc)
        stage1 = _train(1, curate, None, p)
        stage2 = _train(2, curate, stage1, p)
        evaluation = evaluate_all(
            benchmarks=benchmarks,
            checkpoint_uri=stage2.outputs["uri"],
            checkpoint_digest=stage2.outputs["digest"],
            workspace=workspace,
            data_root=eval_data_root,
            profile=profile,
            max_samples=eval_max_samples,
            overrides=overrides,
            accelerator_type=accelerator_type,
            gpu_node_selector=gpu_node_selector,
            gpu_tolerations=gpu_tolerations,
            workspace_pvc=workspace_pvc,
        )
        register = register_op(
            checkpoint_uri=stage2.outputs["uri"],
            metrics_uris=evaluation.output,
            workspace=workspace,
            run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
            model_name=model_name,
            policy=promotion_policy,
            promote=promote,
        )
        register.set_display_name("register + promotion gate").set_caching_options(False).set_retry(3, "30s")
        _platform(register, workspace_pvc)

    return ufvideo_pipeline


def compile_pipeline(
    path: str, image: str = DEFAULT_IMAGE, gpu_image: str = DEFAULT_GPU_IMAGE, release: bool = False
) -> str:
    """Write the pipeline's IR YAML (PipelineSpec + PlatformSpec documents) to `path`; `release` insists both
    images are pinned by digest (a tag can move under a release)."""
    from kfp import compiler

    from ufvideo.config import ConfigError

    if release:
        loose = [ref for ref in (image, gpu_image) if not is_pinned(ref)]
        if loose:
            raise ConfigError(f"release images must be pinned by digest (name@sha256:<64 hex>): {', '.join(loose)}")
    compiler.Compiler().compile(build_pipeline(image, gpu_image), path)
    return path
