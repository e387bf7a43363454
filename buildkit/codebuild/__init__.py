"""AWS CodeBuild: generated buildspecs and projects, and imgbuild's behaviour inside a build.

`buildspec` renders buildspecs/, `project` the desired projects/webhooks/report groups/role,
`aws` plans (field diffs in `changes`) and applies them with boto3, `cloudformation` emits the
same as a template, and `runtime` reads the CODEBUILD_* variables of a running build.
"""
