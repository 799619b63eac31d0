"""The operator process: Kopf registration (`handlers`), its start-up and clean-up, and running it.

The only package of `controller` that imports `kopf`. Everything it calls lives a layer below, in
`controller.reconcile`.
"""
