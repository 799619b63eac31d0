pytest_plugins = ["tests.fixtures.services", "tests.fixtures.kube", "tests.fixtures.stack"]
