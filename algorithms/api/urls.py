from django.urls import path

from . import views

urlpatterns = [
    path("algorithms/", views.AlgorithmListCreateView.as_view(), name="api-algorithms"),
    path("algorithms/<uuid:algorithm_id>/", views.AlgorithmDetailView.as_view(), name="api-algorithm"),
    path("implementations/", views.ImplementationListCreateView.as_view(), name="api-implementations"),
    path(
        "implementations/<uuid:implementation_id>/",
        views.ImplementationDetailView.as_view(),
        name="api-implementation",
    ),
    path(
        "implementations/<uuid:implementation_id>/files/",
        views.ImplementationFileListCreateView.as_view(),
        name="api-implementation-files",
    ),
    path(
        "implementations/<uuid:implementation_id>/git-import",
        views.ImplementationGitImportView.as_view(),
        name="api-implementation-git-import",
    ),
    path(
        "implementations/<uuid:implementation_id>/files/<uuid:file_id>/create-service",
        views.ImplementationFileCreateServiceView.as_view(),
        name="api-implementation-file-create-service",
    ),
]
